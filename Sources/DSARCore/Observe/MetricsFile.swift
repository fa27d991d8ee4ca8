import Foundation

/// The Prometheus node_exporter textfile (`--metrics-file PATH`, e.g.
/// `/var/lib/prometheus/node-exporter/dsar.prom`), written atomically: a sibling dot file, fsync,
/// rename. Holds counts, sizes and times only, never personal data.
package enum MetricsFile {
    /// The metric text for the spool's current state plus what this process did.
    package static func render(
        layout: SpoolLayout, records: [JobRecord], stats: RunStats, notificationsPending: Int, mode: String,
        dueSoonDays: Int = 5, now: Date = Date(), clock: Date = DSARClock.now()
    ) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for s in samples { out += "\(name)\(s.labels.isEmpty ? "" : "{\(s.labels)}") \(s.value)\n" }
        }
        func label(_ k: String, _ v: String) -> String {
            var e = ""
            for ch in v.unicodeScalars {
                switch ch {
                case "\\": e += "\\\\"
                case "\"": e += "\\\""
                case "\n": e += "\\n"
                default: e.unicodeScalars.append(ch)
                }
            }
            return "\(k)=\"\(e)\""
        }
        func num(_ d: Double) -> String {
            d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(format: "%.3f", d)
        }
        family(
            "dsar_info", "gauge", "Version of dsar and the mode of the process writing this file.",
            [
                (label("version", DSARVersion.string) + "," + label("mode", mode), "1")
            ])
        var byStatus: [JobStatus: Int] = [:]
        for r in records { byStatus[r.status, default: 0] += 1 }
        family(
            "dsar_jobs", "gauge", "Job records in the spool by status.",
            JobStatus.allCases.map { (label("status", $0.rawValue), String(byStatus[$0] ?? 0)) })
        // The case gauges: a job is open until `dsar close` (whatever its status), on the clock of
        // deadlines (`DSAR_NOW` when set).
        family(
            "dsar_jobs_open", "gauge", "Jobs whose case is open (not closed by dsar close), whatever their status.",
            [
                ("", String(records.filter(\.isOpen).count))
            ])
        family(
            "dsar_jobs_overdue", "gauge", "Open jobs past their deadline (COMPLETED but unanswered counts).",
            [
                ("", String(records.filter { $0.isOverdue(now: clock) }.count))
            ])
        family(
            "dsar_jobs_due_soon", "gauge", "Open jobs whose deadline is at most due_soon_days away.",
            [
                ("", String(records.filter { $0.isDueSoon(days: dueSoonDays, now: clock) }.count))
            ])
        let oldestOpen = records.filter(\.isOpen).map(\.deadlineDate).min()
        family(
            "dsar_next_deadline_timestamp_seconds", "gauge",
            "Earliest deadline of an open job (0 when none).",
            [
                ("", num(oldestOpen.map { $0.timeIntervalSince1970.rounded() } ?? 0))
            ])
        family(
            "dsar_notifications_pending", "gauge", "Notifications queued in notify/ (failed ones wait for a retry).",
            [
                ("", String(notificationsPending))
            ])
        family(
            "dsar_run_jobs_finished_total", "counter", "Jobs this process finished, by final status.",
            [JobStatus.completed, .partial, .failed].map {
                (label("status", $0.rawValue), String(stats.jobsFinished[$0] ?? 0))
            })
        family(
            "dsar_run_requests_rejected_total", "counter", "Requests this process rejected at intake.",
            [("", String(stats.rejected))])
        family("dsar_run_batches_total", "counter", "Batches this process ran.", [("", String(stats.batches))])
        family(
            "dsar_run_last_batch_duration_seconds", "gauge", "Wall time of the last batch (scan, erasure, sealing).",
            [
                ("", num(stats.lastBatchSeconds))
            ])
        let names = stats.connectors.keys.sorted()
        family(
            "dsar_connector_records_found_total", "counter", "Records found per connector by this process.",
            names.map { (label("connector", $0), String(stats.connectors[$0]!.records)) })
        family(
            "dsar_connector_bytes_scanned_total", "counter",
            "Bytes of source data read per connector by this process (every expansion round).",
            names.map { (label("connector", $0), String(stats.connectors[$0]!.bytesScanned)) })
        family(
            "dsar_connector_scan_seconds_total", "counter",
            "Wall seconds spent scanning per connector by this process.",
            names.map { (label("connector", $0), num(stats.connectors[$0]!.seconds)) })
        family(
            "dsar_connector_failures_total", "counter",
            "Failed scans per connector (after retries; one per batch and expansion round) by this process.",
            names.map { (label("connector", $0), String(stats.connectors[$0]!.failures)) })
        family(
            "dsar_run_start_timestamp_seconds", "gauge", "When this process started.",
            [
                ("", num(stats.startedAt.timeIntervalSince1970.rounded()))
            ])
        family(
            "dsar_run_duration_seconds", "gauge", "Seconds since this process started.",
            [
                ("", num(now.timeIntervalSince(stats.startedAt)))
            ])
        family(
            "dsar_last_success_timestamp_seconds", "gauge",
            "When a run or watch pass last ended with no failed or partial job (0: never).",
            [
                ("", num(stats.lastSuccess.map { $0.timeIntervalSince1970.rounded() } ?? 0))
            ])
        return out
    }

    /// The last-success time recorded in an earlier file at `path` (so that cron runs carry it on).
    package static func previousLastSuccess(at path: String) -> Date? {
        guard let bytes = try? FileSystem.readFile(path, limit: 1 << 20) else { return nil }
        let prefix = "dsar_last_success_timestamp_seconds "
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix(prefix) {
            if let v = Double(line.dropFirst(prefix.count)), v > 0 { return Date(timeIntervalSince1970: v) }
        }
        return nil
    }

    /// Writes the file atomically (mode 0644: node_exporter reads it; it holds no personal data).
    package static func write(_ path: String, _ text: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty, !FileSystem.exists(dir) {
            throw DSARError(
                .notFound,
                "the directory of --metrics-file \(path) does not exist; create \(dir) or choose another path",
                path: dir)
        }
        try FileSystem.writeAtomically(path, Array(text.utf8), mode: 0o644)
    }
}
