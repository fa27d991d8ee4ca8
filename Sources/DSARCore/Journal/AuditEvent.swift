import Foundation

/// One auditable event, built only by the factories below from its ``AuditEventType``'s definition.
/// Holds no personal data: subjects only as pseudonyms, identifiers only by type.
package struct AuditEvent: Sendable {
    /// What happened.
    package let type: AuditEventType
    /// The job it belongs to, if any.
    package let jobID: String?
    /// The subject's pseudonym, if the event is about one.
    package let subject: String?
    /// The type's detail fields (absent optional fields left out).
    package let details: [JSONMember]

    /// An event of `type`; a nil value leaves an optional field out. The details must fit the
    /// type's ``AuditEventType/fields`` (checked in debug builds, and by `dsar audit verify`).
    package init(
        _ type: AuditEventType, job: String? = nil, subject: String? = nil,
        _ details: KeyValuePairs<String, JSONValue?> = [:]
    ) {
        self.type = type
        self.jobID = job
        self.subject = subject
        guard case .object(let members) = JSONValue.obj(omittingNil: details) else { preconditionFailure() }
        self.details = members
        assert(type.problem(with: .object(self.details)) == nil, "\(type.problem(with: .object(self.details)) ?? "")")
    }
}

extension AuditEvent {
    // MARK: Intake

    /// A drop moved into `active/` as job `job`.
    package static func jobClaimed(job: String, subject: String, file: String) -> AuditEvent {
        AuditEvent(.jobClaimed, job: job, subject: subject, ["file": .string(file)])
    }

    /// What a claimed request asks for.
    package static func requestReceived(
        job: String, subject: String, request: DSARRequest, signer: String?
    ) -> AuditEvent {
        AuditEvent(
            .requestReceived, job: job, subject: subject,
            [
                "action": .string(request.action.rawValue), "regulation": .string(request.regulation.rawValue),
                "identifier_types": .array(request.identifiers.map { .string($0.type) }), "signer": .str(signer),
            ])
    }

    /// A drop refused (`file`: where it was stored when its name could not be kept).
    package static func requestRejected(drop: String, reason: String, file: String? = nil) -> AuditEvent {
        AuditEvent(
            .requestRejected, ["drop": .string(drop), "file": file.map { .string($0) }, "reason": .string(reason)])
    }

    /// A drop that repeated the `request_id` of job `firstJob`.
    package static func requestDuplicate(firstJob: String, drop: String, reason: String) -> AuditEvent {
        AuditEvent(.requestDuplicate, job: firstJob, ["drop": .string(drop), "reason": .string(reason)])
    }

    // MARK: Running

    /// A job set RUNNING.
    package static func jobStarted(job: String, subject: String, attempt: Int) -> AuditEvent {
        AuditEvent(.jobStarted, job: job, subject: subject, ["attempt": .int(attempt)])
    }

    /// A connector began a scan round for a job.
    package static func connectorStarted(job: String, subject: String?, connector: String, round: Int) -> AuditEvent {
        AuditEvent(
            .connectorStarted, job: job, subject: subject, ["connector": .string(connector), "round": .int(round)])
    }

    /// A connector that needed `attempts` attempts.
    package static func connectorRetried(job: String, subject: String?, connector: String, attempts: Int) -> AuditEvent
    {
        AuditEvent(
            .connectorRetried, job: job, subject: subject,
            ["connector": .string(connector), "attempts": .int(attempts)])
    }

    /// The end of a connector's scan for a job: finished, or failed with `reason` (already scrubbed).
    package static func connectorScanned(
        job: String, subject: String?, connector: String, records: Int, bytesScanned: Int64, durationMs: Int,
        attempts: Int,
        round: Int, failure reason: String?
    ) -> AuditEvent {
        AuditEvent(
            reason == nil ? .connectorFinished : .connectorFailed, job: job, subject: subject,
            [
                "connector": .string(connector), "records": .int(records), "bytes_scanned": .int(bytesScanned),
                "duration_ms": .int(durationMs), "attempts": .int(attempts), "round": .int(round),
                "reason": reason.map { .string($0) },
            ])
    }

    /// A connector whose erasure failed for a job (`reason` already scrubbed).
    package static func connectorEraseFailed(
        job: String, subject: String?, connector: String, reason: String
    ) -> AuditEvent {
        AuditEvent(
            .connectorFailed, job: job, subject: subject,
            ["connector": .string(connector), "phase": .string("erase"), "reason": .string(reason)])
    }

    /// An identifier learnt from a matching record (its type only).
    package static func identifierDerived(job: String, subject: String?, type: String, provenance: String) -> AuditEvent
    {
        AuditEvent(
            .identifiersDerived, job: job, subject: subject, ["type": .string(type), "provenance": .string(provenance)])
    }

    // MARK: Erasure

    /// What erasure did to one source for a job: `file.retained` for a retained source (nothing
    /// changed), `file.erased` otherwise.
    package static func fileErasure(job: String, subject: String?, _ f: FileErasure) -> AuditEvent {
        AuditEvent(
            f.strategy == .retain ? .fileRetained : .fileErased, job: job, subject: subject,
            [
                "connector": .string(f.connector), "file": .string(f.file), "table": f.table.map { .string($0) },
                "strategy": .string(f.strategy.rawValue), "deleted": .int(f.deleted), "redacted": .int(f.redacted),
                "retained": .int(f.retained), "remaining": .int(f.remaining), "sha256_before": .str(f.sha256Before),
                "sha256_after": .str(f.sha256After),
            ])
    }

    /// The second search after erasure for a job: how much it searched and how many gaps it found.
    package static func erasureVerified(
        job: String, subject: String?, connectors: Int, sourceFiles: Int, gaps: Int
    ) -> AuditEvent {
        AuditEvent(
            .erasureVerified, job: job, subject: subject,
            ["connectors": .int(connectors), "source_files": .int(sourceFiles), "gaps": .int(gaps)])
    }

    // MARK: Publishing and ending

    /// A bundle (export) or receipt (delete) sealed with the manifest's SHA-256.
    package static func sealed(
        job: String, subject: String, action: RequestAction, manifestSHA256: String
    ) -> AuditEvent {
        AuditEvent(
            action == .export ? .bundleSealed : .receiptSealed, job: job, subject: subject,
            ["manifest_sha256": .string(manifestSHA256)])
    }

    /// A job's outbox entry published (`outbox`: relative to the spool).
    package static func jobPublished(job: String, subject: String, outbox: String) -> AuditEvent {
        AuditEvent(.jobPublished, job: job, subject: subject, ["outbox": .string(outbox)])
    }

    /// A job's end.
    package static func jobFinished(job: String, subject: String, status: JobStatus, records: Int) -> AuditEvent {
        AuditEvent(
            .jobFinished, job: job, subject: subject, ["status": .string(status.rawValue), "records": .int(records)])
    }

    /// A job found past its deadline.
    package static func jobOverdue(job: String, subject: String, deadline: String, status: JobStatus) -> AuditEvent {
        AuditEvent(
            .jobOverdue, job: job, subject: subject,
            ["deadline": .string(deadline), "status": .string(status.rawValue)])
    }

    /// An open job whose deadline is near.
    package static func jobDueSoon(
        job: String, subject: String, deadline: String, daysLeft: Int, status: JobStatus
    ) -> AuditEvent {
        AuditEvent(
            .jobDueSoon, job: job, subject: subject,
            ["deadline": .string(deadline), "days_left": .int(daysLeft), "status": .string(status.rawValue)])
    }

    /// `dsar close` closed a case; the operator's note itself is never journaled, only whether there is one.
    package static func jobClosed(
        job: String, subject: String, reason: CloseReason, status: JobStatus, deadline: String, note: Bool
    ) -> AuditEvent {
        AuditEvent(
            .jobClosed, job: job, subject: subject,
            [
                "reason": .string(reason.rawValue), "status": .string(status.rawValue), "deadline": .string(deadline),
                "note": .bool(note),
            ])
    }

    /// `dsar retry` put a job back to PENDING.
    package static func jobRetried(
        job: String, subject: String, attempt: Int, was: JobStatus, outboxWithdrawn: Bool
    ) -> AuditEvent {
        AuditEvent(
            .jobRetried, job: job, subject: subject,
            ["attempt": .int(attempt), "was": .string(was.rawValue), "outbox_withdrawn": .bool(outboxWithdrawn)])
    }

    /// `dsar deliver` made the subject's copy `file` (relative to the spool), the `delivery`-th of
    /// the job. Never the passphrase.
    package static func jobDelivered(
        job: String, subject: String, file: String, sha256: String, bytes: Int64, delivery: Int
    ) -> AuditEvent {
        AuditEvent(
            .jobDelivered, job: job, subject: subject,
            ["file": .string(file), "sha256": .string(sha256), "bytes": .int(Int(bytes)), "delivery": .int(delivery)])
    }

    /// `dsar serve` made a download link to `file` of the job's entry, valid until `expires`, for the
    /// principal whose pseudonym is `principal` (``Pseudonymizer/principalPseudonym(_:)``; nil: `auth: none`).
    package static func downloadGranted(
        job: String, subject: String, file: String, expires: String, principal: String?
    ) -> AuditEvent {
        AuditEvent(
            .downloadGranted, job: job, subject: subject,
            ["file": .string(file), "expires": .string(expires), "principal": .str(principal)])
    }

    /// `dsar extend` moved a job's deadline.
    package static func deadlineExtended(
        job: String, subject: String, days: Int, deadline: String, reason: String
    ) -> AuditEvent {
        AuditEvent(
            .deadlineExtended, job: job, subject: subject,
            ["days": .int(days), "deadline": .string(deadline), "reason": .string(reason)])
    }

    /// What recovery found of a job (`was`: RUNNING or CLAIMED); `crashes` so far, and `now` when
    /// it was set aside.
    package static func crashRecovered(
        job: String, subject: String, was: String, crashes: Int? = nil, now: JobStatus? = nil
    ) -> AuditEvent {
        AuditEvent(
            .crashRecovered, job: job, subject: subject,
            ["was": .string(was), "crashes": crashes.map { .int($0) }, "now": now.map { .string($0.rawValue) }])
    }

    // MARK: Notifications and housekeeping

    /// A notification delivered.
    package static func notifySent(
        job: String?, notifier: String, event: String, attempt: Int, durationMs: Int
    ) -> AuditEvent {
        AuditEvent(
            .notifySent, job: job,
            [
                "notifier": .string(notifier), "event": .string(event), "attempt": .int(attempt),
                "duration_ms": .int(durationMs),
            ])
    }

    /// A notification that failed (delivery: with the notifier, attempt, duration and when it is retried).
    package static func notifyFailed(
        job: String?, subject: String? = nil, notifier: String? = nil, event: String, attempt: Int? = nil,
        reason: String,
        durationMs: Int? = nil, retry: String? = nil
    ) -> AuditEvent {
        AuditEvent(
            .notifyFailed, job: job, subject: subject,
            [
                "notifier": notifier.map { .string($0) }, "event": .string(event), "attempt": attempt.map { .int($0) },
                "reason": .string(reason), "duration_ms": durationMs.map { .int($0) },
                "retry": retry.map { .string($0) },
            ])
    }

    /// A queued notification dropped.
    package static func notifyAbandoned(
        job: String?, notifier: String, event: String, attempt: Int, reason: String
    ) -> AuditEvent {
        AuditEvent(
            .notifyAbandoned, job: job,
            [
                "notifier": .string(notifier), "event": .string(event), "attempt": .int(attempt),
                "reason": .string(reason),
            ])
    }

    /// An outbox entry removed after `retention_days`.
    package static func outboxExpired(job: String, retentionDays: Int) -> AuditEvent {
        AuditEvent(.outboxExpired, job: job, ["retention_days": .int(retentionDays)])
    }

    // MARK: The journal itself

    /// A torn last line moved aside.
    package static func journalRecovered(tornBytes: Int, tornFile: String?) -> AuditEvent {
        AuditEvent(.journalRecovered, ["torn_bytes": .int(tornBytes), "torn_file": .str(tornFile)])
    }

    /// A signed checkpoint of the chain's head.
    package static func checkpoint(
        signedSeq: Int, signedHash: String, namespace: String, principal: String, signature: String
    ) -> AuditEvent {
        AuditEvent(
            .checkpoint,
            [
                "signed_seq": .int(signedSeq), "signed_hash": .string(signedHash), "namespace": .string(namespace),
                "principal": .string(principal), "signature": .string(signature),
            ])
    }

    /// A checkpoint the witness did not take.
    package static func witnessFailed(
        signedSeq: Int, reason: String, pending: Int, durationMs: Int, retry: String
    ) -> AuditEvent {
        AuditEvent(
            .witnessFailed,
            [
                "signed_seq": .int(signedSeq), "reason": .string(reason), "pending": .int(pending),
                "duration_ms": .int(durationMs), "retry": .string(retry),
            ])
    }
}
