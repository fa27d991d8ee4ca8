import Foundation
import Logging

/// A source with no built-in type: any executable speaking the dsar plugin protocol.
///
/// Protocol (version 1), one invocation per job:
/// - stdin: one JSON object `{"protocol": 1, "action": "export" | "delete", "dry_run": bool,
///   "job_id": "...", "identifiers": [{"type": "email", "value": "alice@example.com"}, ...]}`.
///   During the search phase the action is always `export` (find, change nothing); the eraser
///   calls with `delete`.
/// - stdout: JSON lines. For `export`, one per record: `{"table": "orders", "record": {...}}`,
///   optionally with `"identifiers": [{"type": ..., "value": ...}]` it learnt (identity expansion).
///   For `delete`: `{"deleted": N, "remaining": N, "retained": N, "detail": "..."}`.
/// - stderr goes to the log; exit 0 means success, anything else a failure whose reason is
///   stderr's last line; a plugin that runs past its timeout is killed (with its process group).
package struct ExecConnector: Connector {
    package let name: String
    package let metadata: SourceMetadata
    package let command: [String]
    package let environment: [String: String]
    /// Seconds one plugin invocation may take.
    package let pluginTimeout: Double
    /// A plugin's `delete` reports what remains; its search is not run again after erasure.
    package var searchedAgainAfterErasure: Bool { false }

    package init(
        name: String, metadata: SourceMetadata, command: [String], environment: [String: String], timeoutSeconds: Double
    ) {
        self.name = name
        self.metadata = metadata
        self.command = command
        self.environment = environment
        self.pluginTimeout = timeoutSeconds
    }

    /// The stdin document for one job.
    package static func input(job: ScanJob, action: RequestAction) -> [UInt8] {
        let doc: JSONValue = .obj([
            "protocol": .int(1), "action": .string(action.rawValue), "dry_run": .bool(job.dryRun),
            "job_id": .string(job.jobID),
            "identifiers": .array(
                job.identifiers.map { .obj(["type": .string($0.type), "value": .string($0.value)]) }),
        ])
        return JSONWriter().encode(doc) + [0x0A]
    }

    /// Runs the plugin for one job and returns its result, failing with stderr's last line.
    package func invoke(job: ScanJob, action: RequestAction, logger: Logger) async throws -> Subprocess.Result {
        let r = try await Subprocess.run(
            command, stdin: ExecConnector.input(job: job, action: action), environment: environment,
            timeout: pluginTimeout, scratchDir: job.workDir)
        for line in String(decoding: r.stderr, as: UTF8.self).split(whereSeparator: \.isNewline).prefix(200) {
            logger.info("plugin stderr", metadata: ["connector": "\(name)", "job": "\(job.jobID)", "line": "\(line)"])
        }
        if r.timedOut {
            throw DSARError(
                .processing,
                "plugin \(command.joined(separator: " ")) timed out after \(Int(pluginTimeout)) s and was killed")
        }
        if r.status != 0 || r.signal != nil {
            let why =
                r.lastErrorLine.isEmpty
                ? (r.signal.map { "killed by signal \($0)" } ?? "exit status \(r.status)") : r.lastErrorLine
            throw DSARError(.processing, "plugin failed (exit \(r.status)): \(why)")
        }
        return r
    }

    package func scan(_ batch: ScanBatch, logger: Logger) async throws -> [String: ConnectorFindings] {
        var out: [String: ConnectorFindings] = [:]
        for job in batch.jobs {
            let r = try await invoke(job: job, action: .export, logger: logger)
            var findings = ConnectorFindings()
            var lineNo = 0
            for line in r.stdout.split(separator: 0x0A, omittingEmptySubsequences: true) {
                lineNo += 1
                let value: JSONValue
                do { value = try JSONParser.parse(Array(line)) } catch {
                    throw DSARError(.processing, "plugin output line \(lineNo) is not JSON: \(error)", cause: error)
                }
                guard case .object = value else {
                    throw DSARError(.processing, "plugin output line \(lineNo) must be a JSON object")
                }
                let table = value["table"].flatMap { if case .string(let s) = $0 { s } else { nil } } ?? name
                var fields: [JSONMember] = []
                if case .object(let m)? = value["record"] { fields = m }
                // A plugin may say that a record only mentions the subject (`"mention": true`) and
                // which of its fields are free text (`"text_fields": [...]`), as dsar's own connectors do.
                let mention = value["mention"] == .bool(true)
                var textFields: [String] = []
                if case .array(let names)? = value["text_fields"] {
                    for case .string(let n) in names { textFields.append(n) }
                }
                findings.found.append(
                    FoundRecord(
                        table: table, source: "exec:\(name)", line: lineNo, fields: fields, matchedOn: ["plugin"],
                        mention: mention, textFields: textFields))
                if case .array(let ids)? = value["identifiers"] {
                    for id in ids {
                        guard case .string(let t)? = id["type"], case .string(let v)? = id["value"],
                            IdentifierNormalizer.isValidTypeName(t),
                            case .success(let norm) = IdentifierNormalizer.normalize(type: t, v)
                        else { continue }
                        let ident = Identifier(type: t, value: norm)
                        if !job.identifiers.contains(ident) {
                            findings.derived.append((ident, "\(t) derived from \(name) (plugin)"))
                        }
                    }
                }
            }
            findings.records = findings.found.count
            out[job.jobID] = findings
        }
        return out
    }
}
