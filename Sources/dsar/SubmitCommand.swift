import ArgumentParser
import DSARCore
import Foundation

extension Dsar {
    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "submit",
            abstract: "Write a valid request into the inbox atomically (temp file, fsync, rename).",
            discussion:
                "Example: dsar submit --email alice@example.com --user-id 1042 --action export --request-id TICKET-4711"
        )

        @OptionGroup var options: SpoolOptions

        @Option(help: "export or delete.") var action: RequestAction
        @Option(help: ArgumentHelp("The subject's e-mail address.", valueName: "address")) var email: [String] = []
        @Option(name: .customLong("user-id"), help: ArgumentHelp("The subject's user id.", valueName: "id")) var userID:
            [String] = []
        @Option(help: ArgumentHelp("The subject's phone number.", valueName: "number")) var phone: [String] = []
        @Option(help: ArgumentHelp("An IP address of the subject.", valueName: "address")) var ip: [String] = []
        @Option(
            name: .customLong("id"),
            help: ArgumentHelp("A custom identifier, TYPE=VALUE (e.g. loyalty_card=778899).", valueName: "type=value"))
        var custom: [String] = []
        @Option(
            name: .customLong("request-id"),
            help: ArgumentHelp("Your reference, e.g. a ticket number.", valueName: "text")) var requestID: String?
        @Option(help: "gdpr or ccpa (default: the spool's default_regulation).") var regulation: Regulation?
        @Option(
            name: .customLong("received-at"),
            help: ArgumentHelp("When the request was received (RFC 3339).", valueName: "time")) var receivedAt: String?
        @Flag(name: .customLong("dry-run"), help: "Ask for a report only; change nothing.") var dryRun = false
        @Option(
            help: ArgumentHelp(
                "Language of the subject report, one of config.yaml `languages:` (default: the first).",
                valueName: "code"))
        var language: String?
        @Option(
            help: ArgumentHelp(
                "Sign the request with this OpenSSH Ed25519 private key (as ssh-keygen -Y sign -n dsar-request would), writing X.json.sig before X.json. Required when the spool has require_signed_requests.",
                valueName: "key"))
        var sign: String?

        func validate() throws {
            if email.isEmpty && userID.isEmpty && phone.isEmpty && ip.isEmpty && custom.isEmpty {
                throw ValidationError(
                    "give at least one identifier: --email, --user-id, --phone, --ip or --id TYPE=VALUE")
            }
            for c in custom where !c.contains("=") { throw ValidationError("--id takes TYPE=VALUE, got \"\(c)\"") }
            if let r = receivedAt, Timestamp.parse(r) == nil {
                throw ValidationError("--received-at must be an RFC 3339 time such as 2026-11-20T09:00:00Z")
            }
        }

        func run() async throws {
            try await Exit.guarding {
                let layout = options.layout
                // Only `dsar init` creates a spool: a mistyped --spool must not swallow requests.
                try SpoolSession.requireExisting(layout)
                let config = try SpoolConfig.load(layout)
                // Loaded first: a bad key fails before anything is written.
                let key = try sign.map { try SSHEd25519Key.load(path: $0) }
                if config.requireSignedRequests && key == nil {
                    throw DSARError(
                        .usage,
                        "the spool \(layout.root) requires signed requests (require_signed_requests): give --sign KEY with an Ed25519 key listed in its request signers file; an unsigned request would wait for its .sig and then be rejected",
                        path: layout.config)
                }
                var subject: [JSONMember] = []
                func add(_ type: String, _ values: [String]) {
                    guard !values.isEmpty else { return }
                    subject.append(
                        JSONMember(
                            key: type,
                            value: values.count == 1 ? .string(values[0]) : .array(values.map { .string($0) })))
                }
                add("email", email)
                add("user_id", userID)
                add("phone", phone)
                add("ip", ip)
                var customs: [String: [String]] = [:]
                for c in custom {
                    let parts = c.split(separator: "=", maxSplits: 1)
                    customs[String(parts[0]), default: []].append(parts.count > 1 ? String(parts[1]) : "")
                }
                for k in customs.keys.sorted() { add(k, customs[k]!) }
                let doc = JSONValue.obj(omittingNil: [
                    "request_id": requestID.map { .string($0) }, "action": .string(action.rawValue),
                    "subject": .object(subject),
                    "received_at": receivedAt.map { .string($0) },
                    "regulation": regulation.map { .string($0.rawValue) },
                    "dry_run": dryRun ? .bool(true) : nil, "language": language.map { .string($0) },
                ])
                let bytes = JSONWriter(indent: 2).encode(doc) + [0x0A]
                do {
                    _ = try RequestParser(defaultRegulation: config.defaultRegulation, languages: config.languages)
                        .parse(
                            bytes)
                } catch let problem as RequestProblem {
                    throw DSARError(.invalidInput, "the request is invalid: \(problem.message)")
                }
                let name = "submit-\(UUIDv7.make()).json"
                if let key {
                    // The signature lands first, so the request is never seen without it.
                    let sig = try SSHSig.sign(bytes, key: key, namespace: Processor.requestNamespace)
                    try FileSystem.writeAtomically(layout.inbox + "/" + name + ".sig", Array(sig.utf8), mode: 0o640)
                }
                try FileSystem.writeAtomically(layout.inbox + "/" + name, bytes, mode: 0o640)
                print(layout.inbox + "/" + name)
            }
        }
    }
}

extension RequestAction: ExpressibleByArgument {}
extension Regulation: ExpressibleByArgument {}
