import Foundation
import Logging

extension ExecConnector: ErasingConnector {
    /// The plugin's own `erase` action decides.
    package var eraseStrategies: [EraseStrategyEntry] { [EraseStrategyEntry(strategy: .plugin)] }

    /// Calls the plugin with `"action": "delete"` for each job and records its report
    /// (`{"deleted": N, "remaining": N, "retained": N, "detail": "…"}`).
    package func erase(_ jobs: [EraseJob], logger: Logger) async throws -> [String: [FileErasure]] {
        var out: [String: [FileErasure]] = [:]
        let scratch = NSTemporaryDirectory() + "dsar-exec-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectory(scratch, mode: 0o700)
        defer { try? FileSystem.removeTree(scratch) }
        for job in jobs {
            let scan = ScanJob(
                jobID: job.jobID, action: .delete, identifiers: job.identifiers, dryRun: job.dryRun, workDir: scratch)
            let r = try await invoke(job: scan, action: .delete, logger: logger)
            var f = FileErasure(connector: name, file: "exec:\(name)", strategy: .plugin)
            let lines = r.stdout.split(separator: 0x0A, omittingEmptySubsequences: true)
            guard let last = lines.last, let v = try? JSONParser.parse(Array(last)), case .object = v else {
                throw DSARError(
                    .processing, "plugin \(name) did not report {\"deleted\": N, \"remaining\": N} on stdout")
            }
            func int(_ k: String) -> Int? { if case .number(let n)? = v[k] { Int(n) } else { nil } }
            guard let deleted = int("deleted"), let remaining = int("remaining") else {
                throw DSARError(.processing, "plugin \(name) report lacks \"deleted\" or \"remaining\"")
            }
            f.deleted = deleted
            f.remaining = remaining
            f.retained = int("retained") ?? 0
            if case .string(let d)? = v["detail"] { f.detail = d }
            out[job.jobID] = [f]
        }
        return out
    }
}
