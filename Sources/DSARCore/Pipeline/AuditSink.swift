import Foundation

/// One auditable event. Holds no personal data: subjects only as pseudonyms.
public struct AuditEvent: Sendable {
    public var type: String
    public var jobID: String?
    public var subject: String?
    public var details: [JSONMember]

    public init(_ type: String, jobID: String? = nil, subject: String? = nil, details: [JSONMember] = []) {
        self.type = type
        self.jobID = jobID
        self.subject = subject
        self.details = details
    }
}

/// Where the pipeline records each step before it counts as done (the audit journal).
public protocol AuditSink: Sendable {
    /// Appends an event durably.
    func append(_ event: AuditEvent) throws
    /// Appends several events of one step durably, in order (one write and fsync where possible).
    func append(contentsOf events: [AuditEvent]) throws
}

extension AuditSink {
    public func append(contentsOf events: [AuditEvent]) throws {
        for e in events { try append(e) }
    }
}

/// An audit sink that records nothing (for tools that only read).
public struct DiscardingAuditSink: AuditSink {
    public init() {}
    public func append(_ event: AuditEvent) throws {}
}
