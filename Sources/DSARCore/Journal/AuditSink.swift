import Foundation

/// Where the pipeline records each step before it counts as done (the audit journal).
package protocol AuditSink: Sendable {
    /// Appends an event durably.
    func append(_ event: AuditEvent) throws
    /// Appends several events of one step durably, in order (one write and fsync where possible).
    func append(contentsOf events: [AuditEvent]) throws
}

extension AuditSink {
    package func append(contentsOf events: [AuditEvent]) throws {
        for e in events { try append(e) }
    }
}

/// An audit sink that records nothing (for tools that only read).
package struct DiscardingAuditSink: AuditSink {
    package init() {}
    package func append(_ event: AuditEvent) throws {}
}
