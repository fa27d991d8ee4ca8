import ArgumentParser
import DSARCore
import Foundation

extension Dsar {
    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "audit",
            abstract: "Check the audit journal.",
            subcommands: [VerifyJournal.self, PrincipalPseudonym.self])

        struct PrincipalPseudonym: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "principal",
                abstract: "Print the pseudonym the journal records for an API client (a JWT `sub`).",
                discussion: """
                    `dsar serve` journals who was handed a download link (`download.granted`) as a keyed
                    pseudonym of the token's `sub`, never the name itself (it may be a person's e-mail).
                    This prints that pseudonym for NAME under this spool's key, so an auditor can find the
                    client's grants: `dsar audit principal portal-client`, then look for it in `dsar events`.
                    """)

            @OptionGroup var options: SpoolOptions
            @Argument(help: "The client's name as its tokens carry it in `sub`.") var name: String

            func validate() throws {
                if name.isEmpty { throw ValidationError("NAME must not be empty") }
            }

            func run() async throws {
                try await Exit.guarding {
                    print(try Pseudonymizer.load(options.layout).principalPseudonym(name))
                }
            }
        }

        struct VerifyJournal: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "verify",
                abstract:
                    "Walk every journal segment: hash links, sequence numbers, checkpoint signatures, manifest heads, witnesses.",
                discussion: """
                    Prints the first problem as journal/<segment>:<line>: what is wrong, and exits 1; on success one
                    summary line. Checkpoint signers must be the spool's signing key (keys/signing_key.pub) unless
                    --allowed-signers is given. journal/HEAD must exist, and every journal/checkpoints/<seq>.txt and
                    .txt.sig must match the chain (a checkpoint beyond the journal's end proves truncation).

                    --witness FILE checks the chain against checkpoints kept outside the spool (what the witness:
                    command of config.yaml received: each checkpoint's 3 message lines followed by its SSH SIGNATURE
                    block). Only such a copy detects someone who rewrote the whole spool, keys included.
                    """)

            @OptionGroup var options: SpoolOptions
            @Option(
                help: ArgumentHelp(
                    "A manifest.json whose journal head must be in the chain (repeatable).", valueName: "path"))
            var manifest: [String] = []
            @Option(help: ArgumentHelp("An OpenSSH allowed_signers file for checkpoint signers.", valueName: "file"))
            var allowedSigners: String?
            @Option(
                help: ArgumentHelp(
                    "A witness file (checkpoints as the witness command received them) the chain must match (repeatable).",
                    valueName: "file"))
            var witness: [String] = []

            func run() async throws {
                try await Exit.guarding {
                    let layout = options.layout
                    let allowed = try allowedSigners.map { try AllowedSigners(contentsOf: $0) }
                    let trusted = KeyMaterial.trustedSigningKeys(layout)
                    do {
                        let summary = try JournalVerifier.verify(
                            dir: layout.journal, manifests: manifest, witnesses: witness
                        ) { blob, principal in
                            if let allowed {
                                if principal.isEmpty {
                                    // No checkpoint entry names the signer: any principal the file allows for the key.
                                    return allowed.principals(for: blob, namespace: Journal.namespace, at: Date())
                                        .isEmpty
                                        ? "\(SSHSig.fingerprint(of: blob)) is not allowed for \(Journal.namespace) by \(allowed.path)"
                                        : nil
                                }
                                return allowed.check(
                                    principal: principal, keyBlob: blob, namespace: Journal.namespace, at: Date())
                            }
                            guard !trusted.isEmpty else { return "no trusted key: pass --allowed-signers" }
                            return trusted.contains(SSHSig.publicKeyText(of: blob))
                                ? nil : "signed by \(SSHSig.fingerprint(of: blob)), not the spool's signing key"
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
