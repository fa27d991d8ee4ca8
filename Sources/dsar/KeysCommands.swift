import ArgumentParser
import DSARCore
import Foundation

extension Dsar {
    struct Keygen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keygen",
            abstract: "Create an age identity + recipient and an Ed25519 signing key with its allowed_signers line.",
            discussion: """
                Writes DIR/age.key (0600) and DIR/age.pub — the privacy team's key pair for opening bundles (in
                production the team makes its own with age-keygen and gives you only the age1… recipient) — and
                DIR/signing_key (0600), DIR/signing_key.pub and DIR/allowed_signers for verifying manifests with
                `ssh-keygen -Y verify`. Existing files are kept.
                """)

        @Option(help: ArgumentHelp("Directory for the key files (created 0700).", valueName: "dir")) var out: String
        @Option(help: "Principal name in allowed_signers.") var principal = "dsar"

        func run() async throws {
            try await Exit.guarding {
                let p = try KeyMaterial.generate(into: FileSystem.absolute(out), principal: principal)
                print("age identity:    \(p.ageIdentity)")
                print(
                    "age recipient:   \(p.ageRecipient)  (\(String(decoding: try FileSystem.readFile(p.ageRecipient), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))"
                )
                print("signing key:     \(p.signingKey)")
                print("public key:      \(p.signingPublicKey)")
                print("allowed_signers: \(p.allowedSigners)")
            }
        }
    }

    struct Decrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "decrypt",
            abstract: "Decrypt an age file (X25519 identities) — for those without the age tool.")

        @Option(
            name: .short, help: ArgumentHelp("An identity file (age-keygen format); repeatable.", valueName: "identity")
        )
        var identity: [String]
        @Option(name: .short, help: ArgumentHelp("Write the plaintext here (default: stdout).", valueName: "path"))
        var output: String?
        @Argument(help: "The .age file.") var file: String

        func validate() throws {
            if identity.isEmpty { throw ValidationError("give at least one identity with -i") }
        }

        func run() async throws {
            try await Exit.guarding {
                var ids: [AgeIdentity] = []
                for i in identity { ids += try AgeKeys.identities(fromFile: i) }
                do {
                    if let output {
                        try AgeDecryptor.decrypt(file: file, identities: ids, to: output)
                    } else {
                        let input = try FileSystem.readFile(file)
                        try AgeDecryptor.decrypt(input, identities: ids) { chunk in
                            try chunk.withUnsafeBytes { try FileSystem.writeAll(1, $0, path: "stdout") }
                        }
                    }
                } catch let e as AgeError {
                    throw DSARError(.verification, "\(file): \(e.description)", path: file)
                }
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Check an outbox entry: manifest signature, bundle hash, and with -i every file inside.",
            discussion: """
                The signer must be trusted: listed in --allowed-signers, else the spool's signing key (signing_key in
                config.yaml, default keys/signing_key, of --spool / $DSAR_SPOOL / ./spool). With neither, verify exits 1:
                a valid signature by an unknown key proves nothing. --insecure-skip-signer checks integrity only and
                says so (WARNING on stderr, "signer NOT verified" in the report).
                """)

        @OptionGroup var options: SpoolOptions
        @Option(
            name: .short,
            help: ArgumentHelp("An age identity file to check the files inside the bundle.", valueName: "identity"))
        var identity: [String] = []
        @Option(help: ArgumentHelp("An OpenSSH allowed_signers file to check the signer against.", valueName: "file"))
        var allowedSigners: String?
        @Flag(
            help:
                "Check integrity only when no trust anchor is available (the signer is NOT verified; printed as a WARNING)."
        )
        var insecureSkipSigner = false
        @Argument(help: "The outbox entry directory (outbox/<job-id>).") var entry: String

        func validate() throws {
            if insecureSkipSigner && allowedSigners != nil {
                throw ValidationError("--insecure-skip-signer and --allowed-signers contradict each other: drop one")
            }
        }

        func run() async throws {
            try await Exit.guarding {
                var ids: [AgeIdentity] = []
                for i in identity { ids += try AgeKeys.identities(fromFile: i) }
                let allowed = try allowedSigners.map { try AllowedSigners(contentsOf: $0) }
                let trusted = allowed == nil ? KeyMaterial.trustedSigningKeys(options.layout) : []
                let report = try BundleVerifier.verify(
                    entry: entry, identities: ids, trusted: trusted, allowedSigners: allowed,
                    skipSignerCheck: insecureSkipSigner)
                if !report.signerVerified {
                    FileHandle.standardError.write(
                        Data(
                            "WARNING: signer NOT verified (--insecure-skip-signer): anyone could have signed \(entry); only its integrity was checked\n"
                                .utf8))
                }
                for l in report.lines { print(l) }
                print(
                    report.signerVerified
                        ? "OK: \(entry) verified" : "OK: \(entry) integrity verified; WARNING: signer NOT verified")
            }
        }
    }
}
