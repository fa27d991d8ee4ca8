import Foundation

extension JobStore {
    /// Extends a job's deadline by `days`, refusing to go past the legal maximum
    /// (GDPR: two months beyond the initial deadline; CCPA: 45 days) or to extend an ended job.
    @discardableResult
    package func extend(_ jobID: String, days: Int, reason: String, now: Date = Date()) throws -> JobRecord {
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard days >= 1 else { throw DSARError(.usage, "--days must be at least 1") }
        guard !reason.isEmpty else {
            throw DSARError(.usage, "--reason must say why (it is recorded and shown to auditors)")
        }
        return try update(jobID) { rec in
            guard !rec.status.isTerminal else {
                throw DSARError(
                    .usage, "job \(jobID) has already ended (\(rec.status.rawValue)); only open jobs can be extended")
            }
            guard let initial = Timestamp.parse(rec.initialDeadline), let current = Timestamp.parse(rec.deadline) else {
                throw DSARError(.io, "job \(jobID) has an unreadable deadline", path: layout.jobRecord(jobID))
            }
            let maxDeadline = Deadline.maximum(initial: initial, regulation: rec.regulation)
            let proposed = Timestamp.Calendar.addingDays(days, to: current)
            if proposed > maxDeadline {
                let room = max(0, Int(floor(maxDeadline.timeIntervalSince(current) / 86400)))
                let law =
                    rec.regulation == .gdpr
                    ? "GDPR Art. 12(3) allows two further months" : "CCPA allows 45 further days"
                throw DSARError(
                    .usage,
                    "extending job \(jobID) by \(days) days would move its deadline to \(Timestamp.formatDay(proposed)), past the legal maximum \(Timestamp.formatDay(maxDeadline)) (\(law)); at most \(room) more days are possible"
                )
            }
            rec.deadline = Timestamp.format(proposed)
            rec.extensions.append(
                JobRecord.Extension(days: days, reason: reason, at: Timestamp.format(now), deadline: rec.deadline))
            rec.note("deadline.extended", "+\(days) days to \(Timestamp.formatDay(proposed)): \(reason)", now: now)
        }
    }
}
