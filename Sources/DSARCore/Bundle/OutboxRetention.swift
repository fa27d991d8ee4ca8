import Foundation

/// Removes published outbox entries older than the retention period (by the entry's mtime).
package enum OutboxRetention {
    /// Removes expired entries; returns their job ids.
    package static func expire(
        _ layout: SpoolLayout, days: Int, now: Date = Date(), audit: any AuditSink
    ) throws -> [String] {
        let cutoff = now.addingTimeInterval(-Double(days) * 86400)
        var removed: [String] = []
        for name in try FileSystem.list(layout.outbox) where UUIDv7.isValid(name) {
            let path = layout.outbox + "/" + name
            guard let st = try FileSystem.lstatus(path), st.kind == .directory, st.mtime < cutoff else { continue }
            // Out of the published namespace first (atomic), then delete.
            let doomed = layout.outbox + "/.\(name).expired"
            try FileSystem.rename(path, to: doomed)
            try FileSystem.syncDirectory(layout.outbox)
            try FileSystem.removeTree(doomed)
            try audit.append(AuditEvent.outboxExpired(job: name, retentionDays: days))
            removed.append(name)
        }
        return removed
    }
}
