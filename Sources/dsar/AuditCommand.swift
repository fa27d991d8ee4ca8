import ArgumentParser
import DSARCore
import Foundation

extension Dsar {
    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "audit",
            abstract: "Check the audit journal.",
            subcommands: [VerifyJournal.self])

        struct VerifyJournal: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "verify",
                abstract: "Walk every journal segment: hash links, sequence numbers, checkpoint signatures, manifest heads.",
                discussion: """
                    Prints the first problem as journal/<segment>:<line>: what is wrong, and exits 1; on success one
                    summary line. Checkpoint signers must be the spool's signing key (keys/signing_key.pub) unless
                    --allowed-signers is given.
                    """)

            @OptionGroup var options: SpoolOptions
            @Option(help: ArgumentHelp("A manifest.json whose journal head must be in the chain (repeatable).", valueName: "path"))
            var manifest: [String] = []
            @Option(help: ArgumentHelp("An OpenSSH allowed_signers file for checkpoint signers.", valueName: "file"))
            var allowedSigners: String?

            func run() async throws {
                try await Exit.guarding {
                    let layout = options.layout
                    let allowed = try allowedSigners.map { try AllowedSigners(contentsOf: $0) }
                    let trusted = KeyMaterial.trustedSigningKeys(layout)
                    do {
                        let summary = try JournalVerifier.verify(dir: layout.journal, manifests: manifest) { blob, principal in
                            if let allowed {
                                return allowed.check(principal: principal, keyBlob: blob, namespace: Journal.namespace, at: Date())
                            }
                            guard !trusted.isEmpty else { return "no trusted key: pass --allowed-signers" }
                            return trusted.contains(SSHSig.publicKeyText(of: blob)) ? nil : "signed by \(SSHSig.fingerprint(of: blob)), not the spool's signing key"
                        }
                        print(summary.description)
                    } catch let p as JournalVerifier.Problem {
                        Exit.printError(p.description)
                        throw ExitCode(1)
                    }
                }
            }
        }
    }
}
