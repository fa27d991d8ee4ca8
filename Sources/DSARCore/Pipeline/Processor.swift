import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The job lifecycle on one spool: recover after a crash, take settled drops from the inbox,
/// claim them as jobs, run the connectors once for the whole batch, and finish each job.
///
/// One `Processor` is used by one `dsar run` or `dsar watch` holding the spool lock.
public final class Processor {
    public let layout: SpoolLayout
    public let config: SpoolConfig
    public let store: JobStore
    public let inbox: Inbox
    public let pseudonymizer: Pseudonymizer
    public let audit: any AuditSink
    /// The log, with the identifiers of the batch in hand scrubbed from every line (``logScrubber``).
    public let logger: Logger
    /// What ``logger`` scrubs: every identifier of the running batch (none between batches).
    public let logScrubber = LogScrubber()
    /// The identifiers of the running batch (requested and derived so far).
    var batchIdentifiers = Set<Identifier>()
    /// The data sources searched for every job.
    public var connectors: [any Connector]
    /// Chooses the finisher for a job (bundler for export, eraser for delete, summary otherwise).
    public var finisher: @Sendable (RequestAction) -> any JobFinisher
    /// How connectors are run.
    public var connectorRunner: ConnectorRunner
    /// Treat every job as a dry run.
    public var forceDryRun = false
    /// Where job-ended and overdue notifications are queued (nil: none configured).
    public var notifications: Notifications?
    /// What this process has done so far (for `--metrics-file`).
    public var stats = RunStats()
    /// Shows scan progress (set by the command line on a terminal).
    public var progress: ScanProgress?
    /// Seconds a drop must stay unchanged before it is taken.
    public var settleSeconds: Double {
        get { tracker.settle }
        set { tracker.settle = newValue }
    }
    /// Seconds an incomplete drop is waited for before it is rejected.
    public var rejectAfterSeconds: Double

    var tracker: SettleTracker
    /// Who may sign requests (when signed requests are required).
    let requestSigners: AllowedSigners?
    /// The SSHSIG namespace of request signatures.
    public static let requestNamespace = "dsar-request"
    var requestIndex: [String: (jobID: String, status: JobStatus)] = [:]
    let parser: RequestParser

    /// What one pass over the inbox did.
    public struct IntakeReport: Sendable {
        public var claimed: [String] = []
        public var rejected: [(name: String, reason: String)] = []
        /// Candidates not taken yet (not settled, or incomplete and young).
        public var waiting: [String] = []
        /// What a waiting drop waits for, when it is not just settling (e.g. its signature file).
        public var waitingFor: [String: String] = [:]
    }

    /// What crash recovery found and fixed.
    public struct RecoveryReport: Sendable {
        public var requeued: [String] = []
        /// Jobs set aside as FAILED after `max_crashes` interrupted runs.
        public var setAside: [String] = []
        public var recreated: [String] = []
        public var removedWork: Int = 0
        public var completedCleanup: [String] = []
        public var isEmpty: Bool { requeued.isEmpty && setAside.isEmpty && recreated.isEmpty && removedWork == 0 && completedCleanup.isEmpty }
    }

    public init(
        layout: SpoolLayout, config: SpoolConfig, connectors: [any Connector] = [],
        finisher: @escaping @Sendable (RequestAction) -> any JobFinisher = { _ in SummaryFinisher() },
        audit: any AuditSink = DiscardingAuditSink(), logger: Logger
    ) throws {
        self.layout = layout
        self.config = config
        self.store = JobStore(layout: layout)
        self.inbox = Inbox(layout: layout)
        self.pseudonymizer = try Pseudonymizer.load(layout)
        self.audit = audit
        self.logger = logScrubber.wrap(logger)
        self.connectors = connectors
        self.finisher = finisher
        self.connectorRunner = ConnectorRunner(concurrency: config.concurrency)
        self.maxBatchJobs = config.maxBatchJobs
        self.tracker = SettleTracker(settle: config.settleSeconds)
        self.rejectAfterSeconds = config.rejectAfterSeconds
        self.parser = RequestParser(defaultRegulation: config.defaultRegulation)
        if config.requireSignedRequests {
            let path = config.requestSigners ?? layout.keys + "/request_signers"
            guard FileSystem.exists(path) else {
                throw DSARError(
                    .config,
                    "require_signed_requests is on but there is no request signers file at \(path): create it in OpenSSH allowed_signers format (principal ssh-ed25519 AAAA…), or set request_signers in \(layout.config)",
                    path: path)
            }
            self.requestSigners = try AllowedSigners(contentsOf: path)
        } else {
            self.requestSigners = nil
        }
        for r in try store.all(onError: { logger.error("\($0.message)") }) {
            if let rid = r.requestID { requestIndex[rid] = (r.jobID, r.status) }
        }
    }

    // MARK: - Recovery

    /// Puts the spool back in order after a crash: stale work is wiped, claimed requests go back to
    /// PENDING (processed again, idempotently), half-published outbox entries are removed.
    public func recover() throws -> RecoveryReport {
        var report = RecoveryReport()
        for name in try FileSystem.list(layout.tmp) {
            try FileSystem.removeTree(layout.tmp + "/" + name)
            report.removedWork += 1
        }
        for name in try FileSystem.list(layout.outbox) where name.hasPrefix(".") && (name.hasSuffix(".partial") || name.hasSuffix(".expired")) {
            try FileSystem.removeTree(layout.outbox + "/" + name)
            report.removedWork += 1
        }
        for dir in [layout.jobs, layout.active, layout.rejected, layout.failed, layout.journal, layout.journal + "/checkpoints", layout.root, layout.keys]
        where FileSystem.exists(dir) {
            for name in try FileSystem.list(dir) where name.hasPrefix(".") && name.hasSuffix(".tmp") {
                try FileSystem.remove(dir + "/" + name)
            }
        }
        for name in try FileSystem.list(layout.active) where !name.hasPrefix(".") && !name.hasSuffix(".json.sig") && !IdentityClosure.isIdentityFile(name) {
            let path = layout.active + "/" + name
            let jobID = name.hasSuffix(".json") ? String(name.dropLast(5)) : ""
            guard UUIDv7.isValid(jobID) else {
                logger.warning("unexpected file in active/ left alone", metadata: ["path": "\(path)"])
                continue
            }
            if store.exists(jobID) {
                let rec = try store.load(jobID)
                switch rec.status {
                case .pending:
                    continue
                case .running:
                    let crashes = (rec.crashes ?? 0) + 1
                    if crashes >= config.maxCrashes {
                        // A job that was in hand every time a run died may be what kills it: set it
                        // aside (request kept in failed/) so the other jobs can run.
                        let reason =
                            "a run stopped (crashed or was killed) while this job was running \(crashes) times (max_crashes: \(config.maxCrashes)); it is set aside so that it cannot stop every run. Look at the logs of those runs, fix the cause, then `dsar retry \(jobID)`"
                        try audit.append(AuditEvent.crashRecovered(job: jobID, subject: rec.subject, was: "RUNNING", crashes: crashes, now: .failed))
                        try store.update(jobID) { $0.crashes = crashes }
                        try fail(jobID, reason: reason)
                        try audit.append(AuditEvent.jobFinished(job: jobID, subject: rec.subject, status: .failed, records: 0))
                        logger.error("job set aside after repeated crashes", metadata: ["job": "\(jobID)", "crashes": "\(crashes)"])
                        report.setAside.append(jobID)
                        continue
                    }
                    try store.update(jobID) {
                        $0.status = .pending
                        $0.crashes = crashes
                        $0.note("recovered", "the previous run stopped while this job was running (\(crashes) of \(self.config.maxCrashes) allowed); it is run again")
                    }
                    try audit.append(AuditEvent.crashRecovered(job: jobID, subject: rec.subject, was: "RUNNING", crashes: crashes))
                    report.requeued.append(jobID)
                case .completed, .partial, .failed:
                    // The crash came after the record was final: its notification may not be queued yet.
                    queueNotification(rec, status: rec.status)
                    try retireRequest(jobID, status: rec.status, reason: rec.error)
                    report.completedCleanup.append(jobID)
                }
            } else {
                // Claimed (renamed into active/) but the record was not written before the crash.
                let bytes = try FileSystem.readFile(path, limit: config.maxRequestBytes)
                let st = try FileSystem.lstatus(path)
                do {
                    let req = try parser.parse(bytes)
                    let rec = try createRecord(jobID: jobID, request: req, dropTime: st?.mtime ?? Date(), note: "recovered: claimed before a crash")
                    try audit.append(AuditEvent.crashRecovered(job: jobID, subject: rec.subject, was: "CLAIMED"))
                    report.recreated.append(jobID)
                } catch {
                    try moveActiveAside(jobID, reason: "the claimed request no longer parses: \(error)")
                }
            }
        }
        try recoverIdentityFiles()
        if !report.isEmpty {
            logger.notice(
                "recovered after an interrupted run",
                metadata: [
                    "requeued": "\(report.requeued.count)", "recreated": "\(report.recreated.count)",
                    "stale_work_removed": "\(report.removedWork)",
                ])
        }
        return report
    }

    /// Identity sets whose request is gone from `active/` follow it (to `failed/`, or deleted when the
    /// job completed); a `failed/<id>.reason` of a job that was retried (PENDING again) is removed.
    func recoverIdentityFiles() throws {
        for name in try FileSystem.list(layout.active) where IdentityClosure.isIdentityFile(name) && !name.hasPrefix(".") {
            let jobID = String(name.dropLast(".identity.json".count))
            guard UUIDv7.isValid(jobID), !FileSystem.exists(layout.activeRequest(jobID)) else { continue }
            if FileSystem.exists(layout.failed + "/\(jobID).json") {
                try FileSystem.rename(layout.activeIdentity(jobID), to: layout.failedIdentity(jobID))
                try FileSystem.syncDirectory(layout.failed)
            } else if let rec = try? store.load(jobID), rec.status == .completed {
                try FileSystem.remove(layout.activeIdentity(jobID))
            } else {
                logger.warning("identity file without its request left alone", metadata: ["path": "\(layout.activeIdentity(jobID))"])
            }
        }
        for name in try FileSystem.list(layout.failed) where name.hasSuffix(".reason") && !name.hasPrefix(".") {
            let jobID = String(name.dropLast(".reason".count))
            guard UUIDv7.isValid(jobID), !FileSystem.exists(layout.failed + "/\(jobID).json"),
                let rec = try? store.load(jobID), !rec.status.isTerminal
            else { continue }
            try FileSystem.remove(layout.failed + "/" + name)
        }
    }

    // MARK: - Intake

    /// One look at the inbox: refuses what must be refused, claims what has settled and parses.
    public func intake(now: Date = Date()) throws -> IntakeReport {
        var claims: [Claim] = []
        let report: IntakeReport
        do {
            report = try intakePass(now: now, claims: &claims)
        } catch {
            // Drops already moved into active/ get their records now (else recovery gives them one).
            try? commit(claims)
            throw error
        }
        try commit(claims)
        return report
    }

    func intakePass(now: Date, claims: inout [Claim]) throws -> IntakeReport {
        var report = IntakeReport()
        var present = Set<String>()
        try rejectUndecodableNames(into: &report)
        // Received order: oldest drop first (by mtime, then name).
        let entries = try inbox.entries().sorted { ($0.status.mtimeNanos, $0.name) < ($1.status.mtimeNanos, $1.name) }
        for (name, st) in entries {
            switch PickupRules.classify(name: name, status: st, maxBytes: config.maxRequestBytes) {
            case .ignore:
                continue
            case .reject(let reason):
                try reject(name, reason: reason, into: &report)
                continue
            case .candidate:
                break
            }
            present.insert(name)
            var sigStatus: FileSystem.Status?
            if requestSigners != nil {
                // The pickup rule waits for both files.
                let sigName = name + ".sig"
                sigStatus = try FileSystem.lstatus(layout.inbox + "/" + sigName)
                guard let sig = sigStatus else {
                    if now.timeIntervalSince(st.mtime) >= rejectAfterSeconds {
                        tracker.forget(name)
                        try reject(name, reason: "no signature: \(sigName) is missing and signed requests are required (sign with ssh-keygen -Y sign -f KEY -n dsar-request \(name))", into: &report)
                    } else {
                        _ = tracker.observe(name, st, now: now)
                        report.waiting.append(name)
                        report.waitingFor[name] = sigName
                        if sigWaitLogged.insert(name).inserted {
                            logger.info(
                                "drop is waiting for its .sig (signed requests are required)",
                                metadata: ["drop": "\(pseudonymizer.dropName(name))", "reject_in_s": "\(Int(rejectAfterSeconds - now.timeIntervalSince(st.mtime)))"])
                        }
                    }
                    continue
                }
                guard sig.kind == .regular, sig.size <= 64 * 1024 else {
                    tracker.forget(name)
                    try reject(name, reason: "\(sigName) is not a regular file of at most 64 KiB", into: &report)
                    continue
                }
                present.insert(sigName)
                let sigSettled = tracker.observe(sigName, sig, now: now)
                let settled = tracker.observe(name, st, now: now)
                guard sigSettled && settled else {
                    report.waiting.append(name)
                    continue
                }
            } else if !tracker.observe(name, st, now: now) {
                report.waiting.append(name)
                continue
            }
            let bytes: [UInt8]
            do {
                bytes = try inbox.read(name, expected: st, maxBytes: config.maxRequestBytes)
            } catch let e as DSARError where e.code == .invalidInput {
                tracker.forget(name)
                report.waiting.append(name)
                continue
            }
            let request: DSARRequest
            do {
                request = try parser.parse(bytes)
            } catch {
                let age = now.timeIntervalSince(st.mtime)
                if error.mayBeIncomplete && age < rejectAfterSeconds {
                    tracker.postpone(name, until: now.addingTimeInterval(max(settleSeconds, 1)))
                    logger.info(
                        "drop is incomplete; waiting for the rest",
                        metadata: ["drop": "\(pseudonymizer.dropName(name))", "retry_for_s": "\(Int(rejectAfterSeconds - age))"])
                    report.waiting.append(name)
                    continue
                }
                tracker.forget(name)
                try reject(name, reason: error.message, into: &report)
                continue
            }
            let unknown = Set(request.identifiers.map(\.type)).subtracting(config.knownIdentifierTypes).sorted()
            if let t = unknown.first {
                tracker.forget(name)
                let hint = ConfigSuggest.didYouMean(t, among: config.knownIdentifierTypes.sorted()).map { " (did you mean \"\($0)\"?)" } ?? ""
                try reject(
                    name,
                    reason: "identifier type \"\(t)\" is not known\(hint): no connector could search for it, so the answer would be empty. Known types: \(config.knownIdentifierTypes.sorted().joined(separator: ", ")); declare custom types in config.yaml (identifier_types: [ \(t) ])",
                    into: &report)
                continue
            }
            // A dry run that has ended does not use up its request_id (one still pending or running does).
            if let rid = request.requestID, let first = requestIndex[rid],
                !((try? store.load(first.jobID)).map { $0.dryRun && $0.status.isTerminal } ?? false)
            {
                tracker.forget(name)
                try reject(
                    name,
                    reason: "duplicate: request_id \"\(rid)\" was already received as job \(first.jobID) (\(first.status.rawValue)); no second job was started",
                    into: &report, duplicateOf: first.jobID)
                continue
            }
            var signer: String?
            if let signers = requestSigners {
                tracker.forget(name + ".sig")
                switch verifySignature(name, bytes: bytes, signers: signers, now: now) {
                case .success(let principal): signer = principal
                case .failure(let why):
                    tracker.forget(name)
                    try reject(name, reason: why.message, into: &report)
                    continue
                }
            }
            tracker.forget(name)
            if let c = try claim(name, request: request, settled: st, signer: signer) {
                claims.append(c)
                report.claimed.append(c.jobID)
            } else {
                report.waiting.append(name)
            }
        }
        tracker.retain(present)
        sigWaitLogged.formIntersection(present)
        return report
    }

    /// Checks `name.sig` over the request bytes: a valid SSHSIG in namespace `dsar-request` by a key
    /// that `request_signers` allows now. Returns the signer's principal.
    func verifySignature(_ name: String, bytes: [UInt8], signers: AllowedSigners, now: Date) -> Result<String, DSARError> {
        let sigPath = layout.inbox + "/" + name + ".sig"
        let blob: [UInt8]
        do {
            let sig = String(decoding: try FileSystem.readFile(sigPath, limit: 64 * 1024), as: UTF8.self)
            blob = try SSHSig.verify(armored: sig, message: bytes, namespace: Processor.requestNamespace)
        } catch {
            return .failure(DSARError(.verification, "invalid signature \(name).sig: \(error)"))
        }
        let principals = signers.principals(for: blob, namespace: Processor.requestNamespace, at: now)
        if let p = principals.first { return .success(p) }
        let reasons = signers.entries.filter { $0.keyBlob == blob }.flatMap { e in
            e.principals.split(separator: ",").map(String.init).compactMap { signers.check(principal: $0, keyBlob: blob, namespace: Processor.requestNamespace, at: now) }
        }
        if let why = reasons.first {
            return .failure(DSARError(.verification, "signature \(name).sig by \(SSHSig.fingerprint(of: blob)) is not accepted: \(why)"))
        }
        return .failure(DSARError(.verification, "signature \(name).sig is by an unknown key \(SSHSig.fingerprint(of: blob)) (not in \(signers.path))"))
    }

    /// When the tracker next expects a waiting drop to settle.
    public var nextSettleTime: Date? { tracker.nextSettleTime() }

    /// Drops already logged as waiting for their signature (logged once, not on every pass).
    var sigWaitLogged = Set<String>()

    /// Moves a drop to `rejected/` (its name kept there, with the reason) and journals and logs it
    /// under its pseudonym only: a file name may be personal data (`alice@example.com.json`).
    func reject(_ name: String, reason: String, into report: inout IntakeReport, duplicateOf jobID: String? = nil) throws {
        let drop = pseudonymizer.dropName(name)
        try inbox.reject(name, reason: reason, pseudonym: drop)
        if !name.hasSuffix(".sig"), FileSystem.exists(layout.inbox + "/" + name + ".sig") {
            try inbox.reject(name + ".sig", reason: "the signature of a rejected request: \(reason)", pseudonym: drop)
        }
        report.rejected.append((name, reason))
        recordRejection(drop: drop, reason: Processor.withoutName(reason, name, drop), duplicate: jobID != nil)
        try audit.append((jobID.map { AuditEvent.requestDuplicate(firstJob: $0, drop: drop, reason: Processor.withoutName(reason, name, drop)) } ?? .requestRejected(drop: drop, reason: Processor.withoutName(reason, name, drop))))
    }

    func recordRejection(drop: String, reason: String, duplicate: Bool) {
        stats.rejected += 1
        logger.warning(
            duplicate ? "duplicate request rejected" : "request rejected",
            metadata: ["drop": "\(drop)", "reason": "\(reason)", "see": "rejected/*.reason (grep \(drop))"])
    }

    /// A reason with the drop's file name (which may be personal data) replaced by its pseudonym.
    static func withoutName(_ reason: String, _ name: String, _ drop: String) -> String {
        var out = reason.replacingOccurrences(of: name, with: drop)
        if name.hasSuffix(".json") { out = out.replacingOccurrences(of: String(name.dropLast(5)), with: drop) }
        return out
    }

    /// Inbox entries whose names are not valid UTF-8 cannot be handled by name: each `*.json` one is
    /// moved to `rejected/` under a safe name, with a reason that shows the name escaped (`\xff`).
    func rejectUndecodableNames(into report: inout IntakeReport) throws {
        for raw in try inbox.undecodableNames() {
            let escaped = Inbox.escape(raw)
            // The same names as valid ones are ignored (dotfiles, uploads in progress, non-JSON).
            if escaped.hasPrefix(".") || !escaped.hasSuffix(".json") || PickupRules.partialSuffixes.contains(where: { escaped.hasSuffix($0) }) {
                continue
            }
            let drop = pseudonymizer.dropName(raw)
            let reason =
                "the file name \"\(escaped)\" is not valid UTF-8 (bytes shown as \\xNN); rename the file using UTF-8 (e.g. only letters, digits, '-', '_' and '.') and upload it again"
            let stored = try inbox.rejectRaw(raw, as: "\(drop).json", reason: reason, escapedName: escaped, pseudonym: drop)
            report.rejected.append((stored, reason))
            recordRejection(drop: drop, reason: "the file name is not valid UTF-8; it was moved to rejected/\(stored)", duplicate: false)
            try audit.append(AuditEvent.requestRejected(drop: drop, reason: "the file name is not valid UTF-8", file: "rejected/" + stored))
        }
    }

    /// A drop moved into `active/` whose record is not written yet.
    struct Claim {
        var jobID: String
        var name: String
        var request: DSARRequest
        var settled: FileSystem.Status
        var signer: String?
    }

    /// Moves a settled, valid drop into `active/` under a new job id (made durable, recorded and
    /// journaled for the whole pass by ``commit(_:)``).
    func claim(_ name: String, request: DSARRequest, settled: FileSystem.Status, signer: String? = nil) throws -> Claim? {
        let jobID = UUIDv7.make()
        let from = layout.inbox + "/" + name
        let to = layout.activeRequest(jobID)
        if signer != nil {
            // The signature travels with the request (first, so a crash never leaves a claimed request without it).
            try FileSystem.rename(from + ".sig", to: to + ".sig")
        }
        guard try FileSystem.renameNoReplace(from, to: to) else { return nil }
        CrashPoint.hit("claim.renamed")
        // A writer that resumed between our read and the move: give the file back and look again.
        // (rename changes ctime, so compare what a writer would change: size, mtime, inode.)
        if let now = try FileSystem.lstatus(to),
            now.size != settled.size || now.mtimeNanos != settled.mtimeNanos || now.inode != settled.inode
        {
            if signer != nil { try FileSystem.rename(to + ".sig", to: from + ".sig") }
            try FileSystem.rename(to, to: from)
            try FileSystem.syncDirectory(layout.inbox)
            return nil
        }
        _ = chmod(to, 0o600)
        if let rid = request.requestID { requestIndex[rid] = (jobID, .pending) }
        return Claim(jobID: jobID, name: name, request: request, settled: settled, signer: signer)
    }

    /// Makes one pass's claims durable: one fsync of `active/` and `inbox/`, one journal write for
    /// all of them, their PENDING records, one fsync of `jobs/`. A crash at any point is recovered
    /// (a claimed request without a record gets one on the next start).
    func commit(_ claims: [Claim]) throws {
        guard !claims.isEmpty else { return }
        try FileSystem.syncDirectory(layout.active)
        try FileSystem.syncDirectory(layout.inbox)
        let records = claims.map { c in
            makeRecord(jobID: c.jobID, request: c.request, dropTime: c.settled.mtime, note: "claimed from inbox", signer: c.signer)
        }
        var events: [AuditEvent] = []
        for (c, rec) in zip(claims, records) {
            events.append(AuditEvent.jobClaimed(job: c.jobID, subject: rec.subject, file: "active/\(c.jobID).json"))
            events.append(AuditEvent.requestReceived(job: c.jobID, subject: rec.subject, request: c.request, signer: c.signer))
        }
        try audit.append(contentsOf: events)
        try store.withRecordsLock {
            for rec in records {
                try store.save(rec, syncDirectory: false)
                CrashPoint.hit("claim.recorded")
            }
            try store.syncDirectory()
        }
        for c in claims {
            logger.info("request claimed", metadata: ["drop": "\(pseudonymizer.dropName(c.name))", "job": "\(c.jobID)", "action": "\(c.request.action.rawValue)"])
        }
    }

    /// A new PENDING record (not saved).
    func makeRecord(jobID: String, request: DSARRequest, dropTime: Date, note: String, signer: String? = nil) -> JobRecord {
        let now = Date()
        let received = request.receivedAt ?? dropTime
        let deadline = Deadline.initial(receivedAt: received, regulation: request.regulation)
        var rec = JobRecord(
            jobID: jobID, requestID: request.requestID, action: request.action, regulation: request.regulation,
            dryRun: request.dryRun || forceDryRun, status: .pending, receivedAt: Timestamp.format(received),
            claimedAt: Timestamp.format(now), initialDeadline: Timestamp.format(deadline), deadline: Timestamp.format(deadline),
            subject: pseudonymizer.subjectPseudonym(request.identifiers),
            identifiers: request.identifiers.map {
                JobRecord.IdentifierRef(type: $0.type, pseudonym: pseudonymizer.pseudonym($0), provenance: "request")
            })
        rec.signer = signer
        rec.note("claimed", note, now: now)
        return rec
    }

    @discardableResult
    func createRecord(jobID: String, request: DSARRequest, dropTime: Date, note: String, signer: String? = nil) throws -> JobRecord {
        let rec = makeRecord(jobID: jobID, request: request, dropTime: dropTime, note: note, signer: signer)
        try store.withRecordsLock { try store.save(rec) }
        if let rid = request.requestID { requestIndex[rid] = (jobID, .pending) }
        return rec
    }

    // MARK: - Running jobs

    /// Ids of claimed jobs waiting to run, oldest first.
    public func pendingJobs() throws -> [String] {
        try FileSystem.list(layout.active).compactMap { name in
            guard name.hasSuffix(".json"), !name.hasPrefix(".") else { return nil }
            let id = String(name.dropLast(5))
            guard UUIDv7.isValid(id), let rec = try? store.load(id), rec.status == .pending else { return nil }
            return id
        }
    }

    /// Runs every pending job as one batch: each connector reads its sources once for all of them.
    /// `shouldStop` is checked before each job is finished; unfinished jobs stay PENDING. Returns the
    /// finished jobs' records without their history (the whole record is in `jobs/`), so that a
    /// batch of thousands holds little.
    public func runPending(stop: StopPolicy = .never) async throws -> [JobRecord] {
        let ids = try pendingJobs()
        guard !ids.isEmpty, !stop.requested() else { return [] }
        do {
            return try await runBatch(ids, stop: stop)
        } catch {
            // An error that stops the batch (a full disk under the journal, say) is not a crash: the
            // jobs it left RUNNING go back to PENDING now, where that still works (else recovery does it).
            for id in ids {
                if let r = try? store.load(id), r.status == .running { try? requeue([id]) }
            }
            throw error
        }
    }

    func runBatch(_ ids: [String], stop: StopPolicy) async throws -> [JobRecord] {
        var jobs: [(record: JobRecord, request: DSARRequest)] = []
        var startedEvents: [AuditEvent] = []
        // Each job's whole identity: the request's identifiers and those an earlier attempt learnt.
        var closures: [String: IdentityClosure] = [:]
        for id in ids {
            let path = layout.activeRequest(id)
            let request: DSARRequest
            do {
                request = try parser.parse(try FileSystem.readFile(path, limit: config.maxRequestBytes))
            } catch {
                try fail(id, reason: "the claimed request no longer parses: \(error)")
                continue
            }
            do {
                var closure = try IdentityClosure.load(layout.activeIdentity(id)) ?? IdentityClosure(jobID: id, request: [])
                closure.merge(request.identifiers.map { ($0, "request") })
                closures[id] = closure
            } catch {
                try fail(id, reason: "\(error)")
                continue
            }
            // RUNNING and PENDING recover the same way, so one directory fsync for the batch suffices.
            let rec = try store.update(id, syncDirectory: false) {
                $0.status = .running
                $0.startedAt = Timestamp.format(Date())
                $0.attempts += 1
                $0.note("started", "attempt \($0.attempts)")
            }
            startedEvents.append(AuditEvent.jobStarted(job: id, subject: rec.subject, attempt: rec.attempts))
            jobs.append((rec, request))
            CrashPoint.hit("job.running")
        }
        // One journal write for the whole batch's start (before any source is read).
        try store.syncDirectory()
        try audit.append(contentsOf: startedEvents)
        guard !jobs.isEmpty else { return [] }
        // Logs are per batch: every line written while it runs is scrubbed of all its identifiers.
        batchIdentifiers = Set(closures.values.flatMap { $0.identifiers })
        logScrubber.set(batchIdentifiers)
        defer {
            batchIdentifiers = []
            logScrubber.clear()
        }
        var scanJobs: [ScanJob] = []
        // One scratch directory for the batch (plugins' capture files); findings stay in memory
        // until they are sealed, so no job needs a directory of its own.
        let work = layout.tmp + "/batch"
        try FileSystem.makeDirectory(work, mode: 0o700)
        defer { try? FileSystem.removeTree(work) }
        for j in jobs {
            scanJobs.append(
                ScanJob(
                    jobID: j.record.jobID, action: j.request.action, identifiers: closures[j.record.jobID]!.identifiers.sorted(),
                    dryRun: j.record.dryRun, workDir: work))
        }
        logger.info("batch started", metadata: ["jobs": "\(jobs.count)", "connectors": "\(connectors.count)"])
        let batchStart = Date()
        stats.batches += 1
        defer { stats.lastBatchSeconds = Date().timeIntervalSince(batchStart) }
        let subjects = Dictionary(uniqueKeysWithValues: jobs.map { ($0.record.jobID, $0.record.subject) })
        // Received order, never interleaved: a request that comes after a delete is searched only
        // once that delete has been carried out (a new segment); consecutive deletes are erased
        // together, one rewrite per file.
        var segments: [[Int]] = []
        // A segment also ends at `maxBatchJobs`: what was found is held in memory until sealed, so
        // this bounds memory for very large batches (each segment reads every source once).
        for (k, j) in jobs.enumerated() {
            if let last = segments.last?.last, jobs[last].request.action == .delete, j.request.action != .delete {
                segments.append([k])
            } else if segments.isEmpty || segments[segments.count - 1].count >= maxBatchJobs {
                segments.append([k])
            } else {
                segments[segments.count - 1].append(k)
            }
        }
        var finished: [JobRecord] = []
        for (n, segment) in segments.enumerated() {
            // A stop asked for before a segment starts: its jobs (and the rest) wait for the next run.
            if n > 0 && stop.requested() {
                try requeue(segments[n...].flatMap { $0 }.map { jobs[$0].record.jobID })
                break
            }
            // The scan of the job in hand goes on through a stop, until the grace period ends.
            let scanned: ScanResult
            do {
                scanned = try await scanWithExpansion(segment.map { scanJobs[$0] }, subjects: subjects, stop: stop)
            } catch is GraceExpired {
                logger.notice("grace period over during a scan; its jobs are put back", metadata: ["jobs": "\(segment.count)"])
                try requeue(segments[n...].flatMap { $0 }.map { jobs[$0].record.jobID })
                break
            }
            CrashPoint.hit("job.scanned")
            let deletes = segment.filter { jobs[$0].request.action == .delete && !jobs[$0].record.dryRun }
            var finishOrder = segment.filter { !deletes.contains($0) }
            var erasure: [String: ErasureOutcome] = [:]
            let shouldStop = stop.expired
            if !deletes.isEmpty && !stop.expired() {
                // Exports of this segment were searched before the erasure; seal them first.
                finished += Processor.withoutHistory(try await finishAll(finishOrder.map { jobs[$0] }, scanned, shouldStop))
                finishOrder = []
                try keepClosures(deletes.map { jobs[$0].record.jobID }, &closures, scanned)
                // Erased and verified (the second search after erasure) with the whole set.
                let eraseJobs = deletes.map { k in
                    let id = jobs[k].record.jobID
                    return EraseJob(jobID: id, identifiers: closures[id]!.identifiers, dryRun: false)
                }
                erasure = try await eraseAll(eraseJobs, subjects: subjects)
                for (id, gaps) in try await verifyErasure(eraseJobs, subjects: subjects) { erasure[id]?.verification = gaps }
                finishOrder = deletes
            } else {
                finishOrder += deletes
            }
            finished += Processor.withoutHistory(try await finishAll(finishOrder.map { jobs[$0] }, scanned, shouldStop, erasure: erasure))
            // What this segment no longer needs is let go now (a large batch runs in many segments).
            for k in segment {
                jobs[k].request.identifiers = []
                jobs[k].record.history = []
                jobs[k].record.identifiers = []
                scanJobs[k].identifiers = []
                closures[jobs[k].record.jobID] = nil
            }
        }
        return finished
    }

    /// Before any source changes: merges what the scans derived into each delete job's identity set
    /// and writes it next to the request (`active/<job-id>.identity.json`, one fsync of `active/` for
    /// all), so that a retry after a partial erasure still knows identifiers whose link is erased.
    func keepClosures(_ ids: [String], _ closures: inout [String: IdentityClosure], _ scanned: ScanResult) throws {
        guard !ids.isEmpty else { return }
        for id in ids {
            closures[id]!.merge(scanned.derived[id] ?? [])
            try closures[id]!.write(layout.activeIdentity(id), syncDirectory: false)
        }
        try FileSystem.syncDirectory(layout.active)
        CrashPoint.hit("identity.written")
    }

    /// Thrown when a stop's grace period ends during a scan.
    struct GraceExpired: Error {}

    /// Runs `body` unless the stop policy's grace period runs out first (then `body` is cancelled
    /// and nil returned). Without a stop request it simply runs `body`.
    static func unlessExpired<T: Sendable>(_ stop: StopPolicy, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                while !stop.expired() {
                    try await Task.sleep(nanoseconds: 100_000_000)
                }
                return nil
            }
            defer { group.cancelAll() }
            while let r = try await group.next() {
                if let r { return r }
                return nil
            }
            return nil
        }
    }

    /// Puts jobs that were set RUNNING back to PENDING (a clean stop before they were finished).
    func requeue(_ ids: [String]) throws {
        guard !ids.isEmpty else { return }
        for id in ids {
            try store.update(id, syncDirectory: false) {
                $0.status = .pending
                $0.note("requeued", "dsar was asked to stop before this job finished")
            }
        }
        try store.syncDirectory()
    }

    static func withoutHistory(_ records: [JobRecord]) -> [JobRecord] {
        records.map { r in
            var r = r
            r.history = []
            return r
        }
    }

    /// Most jobs scanned together in one pass over the sources (`max_batch_jobs`).
    public var maxBatchJobs = 1000

    /// How many jobs are sealed at once: CPU work (ZIP, encryption, signing) and fsyncs, so twice
    /// the cores keeps them busy while other seals wait for the disk.
    public var sealConcurrency = max(2, min(8, 2 * ProcessInfo.processInfo.activeProcessorCount))

    /// Finishes jobs: seals them in parallel (``sealConcurrency`` at a time), and records, retires
    /// and journals each in order as its seal completes. A stop request requeues jobs not yet begun
    /// (except erased ones, which must be reported).
    func finishAll(
        _ list: [(record: JobRecord, request: DSARRequest)], _ scanned: ScanResult, _ shouldStop: () -> Bool,
        erasure: [String: ErasureOutcome] = [:]
    ) async throws -> [JobRecord] {
        let work = list.map { j in
            prepare(
                record: j.record, request: j.request, outcomes: scanned.results[j.record.jobID] ?? [],
                derived: scanned.derived[j.record.jobID] ?? [], erasure: erasure[j.record.jobID])
        }
        var out: [JobRecord] = []
        let finisher = self.finisher
        let layout = self.layout
        let logger = self.logger
        let width = sealConcurrency
        try await withThrowingTaskGroup(of: (Int, SealResult).self) { group in
            var next = 0
            var emit = 0
            var done: [Int: SealResult] = [:]
            func launch() {
                let k = next
                let w = work[k]
                next += 1
                if shouldStop() && w.erasure == nil {
                    group.addTask { (k, .requeue) }
                } else if w.status == .failed {
                    group.addTask { (k, .skipped) }
                } else {
                    group.addTask { (k, Processor.seal(w, finisher: finisher(w.request.action), layout: layout, logger: logger)) }
                }
            }
            while next < work.count && next < width { launch() }
            // Concluded in order, in groups: one journal write, one fsync of jobs/ and of active/ per group.
            var ready: [(SealWork, SealResult)] = []
            while let (k, r) = try await group.next() {
                done[k] = r
                while let r = done.removeValue(forKey: emit) {
                    ready.append((work[emit], r))
                    emit += 1
                }
                if next < work.count { launch() }
                if ready.count >= 64 || (emit == work.count && !ready.isEmpty) {
                    out += try conclude(ready)
                    ready = []
                }
            }
        }
        return out
    }

    /// A job ready to seal: its status before publishing and what the finisher needs.
    struct SealWork: Sendable {
        var record: JobRecord
        var request: DSARRequest
        var outcomes: [ConnectorOutcome]
        var derived: [(Identifier, String)]
        var erasure: ErasureOutcome?
        var status: JobStatus
        var error: String?
    }

    /// How sealing one job ended.
    enum SealResult: Sendable {
        case sealed(path: String, manifestSHA256: String?)
        case failed(String)
        /// Nothing to publish (every connector failed).
        case skipped
        /// Not begun: dsar was asked to stop.
        case requeue
    }

    /// The job's status from its connectors (and erasure), before publishing.
    func prepare(
        record: JobRecord, request: DSARRequest, outcomes: [ConnectorOutcome], derived: [(Identifier, String)], erasure: ErasureOutcome?
    ) -> SealWork {
        let failedCount = outcomes.filter { $0.status == .failed }.count
        var status: JobStatus =
            failedCount == 0 ? .completed : (failedCount == outcomes.count ? .failed : .partial)
        var error: String? =
            failedCount == 0
            ? nil : outcomes.filter { $0.status == .failed }.map { "\($0.name): \($0.error ?? "failed")" }.joined(separator: "; ")
        if outcomes.isEmpty {
            // Never certify a search of nothing (the run refuses to start without connectors).
            status = .failed
            error = "no connectors are configured: nothing was searched"
        }
        // Coverage: a source that was not searched completely, or an occurrence of the subject's
        // identifiers that no matched record accounts for, means the statement would not be true.
        let gaps = outcomes.filter { $0.status == .ok }.flatMap(\.findings.gaps)
        if !gaps.isEmpty && status == .completed {
            status = .partial
            error = Processor.describe(gaps, lead: "not everything could be accounted for")
        } else if !gaps.isEmpty, let e = error {
            error = e + "; " + Processor.describe(gaps, lead: "also")
        }
        if let erasure, status != .failed {
            var problems = erasure.errors.sorted { $0.key < $1.key }.map { "\($0.key): erasure failed: \($0.value)" }
            if erasure.unexpectedRemaining > 0 {
                problems.append("\(erasure.unexpectedRemaining) records of the subject remain after erasure (see the receipt)")
            }
            if !erasure.verification.isEmpty {
                problems.append(Processor.describe(erasure.verification, lead: "the search after erasure still finds the subject"))
            }
            if !problems.isEmpty {
                status = erasure.files.contains { $0.deleted + $0.redacted > 0 } || status == .partial ? .partial : .failed
                error = ([error].compactMap { $0 } + problems).joined(separator: "; ")
            }
        }
        return SealWork(
            record: record, request: request, outcomes: outcomes, derived: derived, erasure: erasure, status: status, error: error)
    }

    /// One sentence for a job's error: how many gaps, and the first few with their locations.
    static func describe(_ gaps: [CoverageGap], lead: String) -> String {
        let shown = gaps.prefix(3).map(\.located).joined(separator: "; ")
        let more = gaps.count > 3 ? "; and \(gaps.count - 3) more (see the manifest's coverage)" : ""
        return "\(lead) (\(gaps.count) gap\(gaps.count == 1 ? "" : "s")): \(shown)\(more)"
    }

    /// Publishes the job's outbox entry (bundle with its findings, or receipt) (no shared state:
    /// runs in parallel with other jobs' seals).
    static func seal(_ w: SealWork, finisher: any JobFinisher, layout: SpoolLayout, logger: Logger) -> SealResult {
        do {
            var rec = w.record
            rec.status = w.status
            rec.error = w.error
            var fj = FinishingJob(
                record: rec, request: w.request, identifiers: w.request.identifiers + w.derived.map(\.0), outcomes: w.outcomes)
            fj.erasure = w.erasure
            let path = try finisher.finish(fj, layout: layout, logger: logger)
            var sha: String?
            if let m = try? FileSystem.readFile(path + "/manifest.json", limit: 64 << 20) {
                var h = StreamingSHA256()
                h.update(m)
                sha = h.hexDigest()
            }
            return .sealed(path: path, manifestSHA256: sha)
        } catch let e as DSARError where e.errno == ENOSPC || e.errno == EDQUOT {
            return .failed(Processor.outOfSpace(e, jobID: w.record.jobID, layout: layout))
        } catch {
            return .failed("\(error)")
        }
    }

    /// The reason of a seal that ran out of space: which directory's file system filled up, the
    /// write that failed, and what to do. The staging directory is gone by then (nothing was
    /// published), so the directory named is its parent, `outbox/`.
    static func outOfSpace(_ e: DSARError, jobID: String, layout: SpoolLayout) -> String {
        let what = e.errno == EDQUOT ? "Disk quota exceeded" : "No space left on device"
        var dir = e.path.map { ($0 as NSString).deletingLastPathComponent } ?? layout.outbox
        let last = (dir as NSString).lastPathComponent
        if last.hasPrefix(".") && last.hasSuffix(".partial") { dir = (dir as NSString).deletingLastPathComponent }
        return "\(what) (\(dir)): \(e.message); the partial output was removed and nothing was published. "
            + "Free space on that file system, then run `dsar retry \(jobID)`"
    }

    /// Runs every erasing connector once for all delete jobs of a segment; journals each changed file.
    func eraseAll(_ jobs: [EraseJob], subjects: [String: String]) async throws -> [String: ErasureOutcome] {
        var out: [String: ErasureOutcome] = [:]
        for j in jobs { out[j.jobID] = ErasureOutcome(files: [], errors: [:]) }
        for c in connectors {
            guard let e = c as? any ErasingConnector else {
                for j in jobs { out[j.jobID]!.errors[c.name] = "this connector cannot erase" }
                continue
            }
            do {
                let results = try await e.erase(jobs, logger: logger)
                for j in jobs {
                    for var f in results[j.jobID] ?? [] {
                        f.detail = f.detail.map { scrubbed($0, j.identifiers) }
                        f.error = f.error.map { scrubbed($0, j.identifiers) }
                        if let e = f.error {
                            // A file that could not be erased, or a failed `reopen:`: the job is PARTIAL with the reason.
                            out[j.jobID]!.errors[c.name] = (out[j.jobID]!.errors[c.name].map { $0 + "; " } ?? "") + e
                        }
                        out[j.jobID]!.files.append(f)
                        try audit.append(AuditEvent.fileErasure(job: j.jobID, subject: subjects[j.jobID], f))
                    }
                }
            } catch {
                logger.error("erasure failed", metadata: ["connector": "\(c.name)", "error": "\(error)"])
                for j in jobs {
                    let reason = scrubbed("\(error)", j.identifiers)
                    out[j.jobID]!.errors[c.name] = reason
                    try audit.append(AuditEvent.connectorEraseFailed(job: j.jobID, subject: subjects[j.jobID], connector: c.name, reason: reason))
                }
            }
        }
        return out
    }

    /// The second search after erasure: every file connector searches its sources again for every
    /// identifier of each delete job (derived ones included), structured and raw. A record found
    /// outside a retained table, a raw occurrence outside every retained record, a source that
    /// cannot be read completely, or a failed search is a gap: the receipt cannot say "0 remaining".
    /// (Plugins report their own remaining counts.)
    func verifyErasure(_ jobs: [EraseJob], subjects: [String: String]) async throws -> [String: [CoverageGap]] {
        var out: [String: [CoverageGap]] = [:]
        let searchers = connectors.filter { !($0 is ExecConnector) }
        guard !jobs.isEmpty, !searchers.isEmpty else { return out }
        let batch = ScanBatch(jobs: jobs.map { ScanJob(jobID: $0.jobID, action: .delete, identifiers: $0.identifiers, dryRun: false, workDir: "") })
        let results = await connectorRunner.run(searchers, batch: batch, logger: logger)
        var events: [AuditEvent] = []
        for j in jobs {
            var gaps: [CoverageGap] = []
            for (c, r) in zip(searchers, results) {
                if let e = r.error {
                    gaps.append(CoverageGap(kind: .remaining, connector: r.name, file: nil, message: "the search after erasure failed: \(scrubbed(e, j.identifiers))"))
                    continue
                }
                guard let f = r.findings[j.jobID] else { continue }
                for rec in f.found where !c.retains(table: rec.table) {
                    gaps.append(
                        CoverageGap(
                            kind: .remaining, connector: r.name, file: rec.source, line: rec.line,
                            message: "a record of the subject is still there after erasure (\(rec.matchedOn.joined(separator: ", ")))"))
                }
                for g in f.gaps {
                    var g = g
                    if g.kind == .unmatched {
                        g.kind = .remaining
                        g.message = "the subject's \(g.type ?? "identifier") is still in the file after erasure, outside every retained record"
                    }
                    gaps.append(g)
                }
            }
            out[j.jobID] = gaps
            events.append(AuditEvent.erasureVerified(
                    job: j.jobID, subject: subjects[j.jobID], connectors: searchers.count,
                    sourceFiles: results.reduce(0) { $0 + ($1.findings[j.jobID]?.coverage.count ?? 0) }, gaps: gaps.count))
        }
        try audit.append(contentsOf: events)
        return out
    }

    /// What the connectors found, per job, after identity expansion reached its fixpoint.
    struct ScanResult {
        var results: [String: [ConnectorOutcome]] = [:]
        var derived: [String: [(Identifier, String)]] = [:]
    }

    /// Removes a subject's identifier values from free text (a plugin's error message may echo them)
    /// before it reaches a job record, manifest or the journal.
    /// (Case-insensitive, URL-encoded forms too; see ``IdentifierScrubber``.)
    public static func scrub(_ text: String, _ ids: [Identifier]) -> String {
        IdentifierScrubber(ids).scrub(text)
    }

    /// Error text of a job made safe for records, receipts and the journal: without the job's own
    /// identifiers (its whole identity set) nor those of any other job of the batch.
    func scrubbed(_ text: String, _ ids: [Identifier]) -> String {
        logScrubber.scrubber.scrub(Processor.scrub(text, ids))
    }

    /// Maximum scan rounds: the first, plus re-scans for jobs whose identity grew.
    public var maxExpansionRounds = 4

    /// Runs all connectors over the batch; jobs whose rows revealed new identifiers (identity
    /// expansion) are scanned again with the larger set, until nothing new appears (bounded).
    func scanWithExpansion(_ scanJobs: [ScanJob], subjects: [String: String], stop: StopPolicy = .never) async throws -> ScanResult {
        var out = ScanResult()
        var round = 0
        var roundJobs = scanJobs
        while !roundJobs.isEmpty && round < maxExpansionRounds {
            round += 1
            var started: [AuditEvent] = []
            for job in roundJobs {
                for c in connectors {
                    started.append(AuditEvent.connectorStarted(job: job.jobID, subject: subjects[job.jobID], connector: c.name, round: round))
                }
            }
            try audit.append(contentsOf: started)
            let batch = ScanBatch(jobs: roundJobs)
            let runner = connectorRunner
            let cs = connectors
            let log = logger
            let progress = self.progress
            let thisRound = round
            // Past a stop's grace period the scan is abandoned (its jobs are requeued, nothing of it journaled).
            guard
                let results = try await Processor.unlessExpired(stop, {
                    if let progress {
                        return await progress.track(cs, round: thisRound) { await runner.run(cs, batch: batch, logger: log, progress: progress) }
                    }
                    return await runner.run(cs, batch: batch, logger: log)
                })
            else { throw GraceExpired() }
            for r in results {
                var t = stats.connectors[r.name] ?? RunStats.ConnectorTotals()
                t.scans += 1
                t.seconds += Double(r.durationMs) / 1000
                if r.error != nil { t.failures += 1 }
                t.bytesScanned += r.findings.values.first.flatMap { $0.details["bytes_scanned"].flatMap { Int64($0) } } ?? 0
                stats.connectors[r.name] = t
            }
            // A connector's error is the batch's: scrubbed of every identifier of the batch (it may
            // name another job's subject), then of the job's own.
            let batchScrub = logScrubber.scrubber
            let errors = results.map { $0.error.map { batchScrub.scrub($0) } }
            var next: [ScanJob] = []
            // The round's outcomes for every job, journaled in one write.
            var events: [AuditEvent] = []
            for job in roundJobs {
                let id = job.jobID
                out.results[id] = zip(results, errors).map { r, e in
                    ConnectorOutcome(
                        name: r.name, metadata: r.metadata, status: r.error == nil ? .ok : .failed,
                        findings: r.findings[id] ?? ConnectorFindings(), error: e.map { Processor.scrub($0, job.identifiers) }, attempts: r.attempts,
                        durationMs: r.durationMs)
                }
                for (r, scrubbed) in zip(results, errors) {
                    if r.attempts > 1 {
                        events.append(AuditEvent.connectorRetried(job: id, subject: subjects[id], connector: r.name, attempts: r.attempts))
                    }
                    events.append(
                        .connectorScanned(
                            job: id, subject: subjects[id], connector: r.name, records: r.findings[id]?.records ?? 0,
                            bytesScanned: r.findings[id]?.details["bytes_scanned"].flatMap { Int64($0) } ?? 0, durationMs: r.durationMs,
                            attempts: r.attempts, round: round, failure: scrubbed.map { Processor.scrub($0, job.identifiers) }))
                }
                var known = Set(job.identifiers)
                var new: [(Identifier, String)] = []
                for r in results {
                    for (ident, provenance) in r.findings[id]?.derived ?? [] where known.insert(ident).inserted {
                        new.append((ident, provenance))
                    }
                }
                guard !new.isEmpty else { continue }
                batchIdentifiers.formUnion(new.map(\.0))
                logScrubber.set(batchIdentifiers)
                out.derived[id, default: []] += new
                for (ident, provenance) in new {
                    events.append(AuditEvent.identifierDerived(job: id, subject: subjects[id], type: ident.type, provenance: provenance))
                }
                var grown = job
                grown.identifiers = known.sorted()
                next.append(grown)
            }
            try audit.append(contentsOf: events)
            roundJobs = next
        }
        return out
    }

    /// Concludes a group of sealed jobs, each in the order: seal journaled, final record written,
    /// request retired, end journaled — with one journal write per step and one directory fsync per
    /// directory for the whole group. Jobs put back to PENDING are not returned.
    func conclude(_ group: [(SealWork, SealResult)]) throws -> [JobRecord] {
        var sealEvents: [AuditEvent] = []
        var finals: [(w: SealWork, status: JobStatus, error: String?, outbox: String?)] = []
        for (w, sealed) in group {
            let id = w.record.jobID
            var status = w.status
            var error = w.error
            var outbox: String?
            switch sealed {
            case .requeue:
                try store.update(id) {
                    $0.status = .pending
                    $0.note("requeued", "dsar was asked to stop before this job finished")
                }
                continue
            case .skipped:
                break
            case .failed(let failure):
                let failure = scrubbed(failure, w.request.identifiers + w.derived.map(\.0))
                status = .failed
                error = "publishing failed: \(failure)"
                logger.error("publishing failed", metadata: ["job": "\(id)", "error": "\(failure)"])
            case .sealed(let path, let sha):
                outbox = path
                if let sha {
                    sealEvents.append(AuditEvent.sealed(job: id, subject: w.record.subject, action: w.request.action, manifestSHA256: sha))
                }
                sealEvents.append(AuditEvent.jobPublished(job: id, subject: w.record.subject, outbox: relative(path)))
            }
            finals.append((w, status, error, outbox))
        }
        try audit.append(contentsOf: sealEvents)
        var records: [JobRecord] = []
        for f in finals {
            let derivedRefs = f.w.derived.map { (ident, provenance) in
                JobRecord.IdentifierRef(type: ident.type, pseudonym: pseudonymizer.pseudonym(ident), provenance: provenance)
            }
            let rec = try store.update(f.w.record.jobID, syncDirectory: false) {
                $0.status = f.status
                $0.error = f.error
                $0.finishedAt = Timestamp.format(Date())
                $0.outbox = f.outbox.map { self.relative($0) }
                $0.identifiers += derivedRefs
                $0.connectors = f.w.outcomes.map { o in
                    var c = JobRecord.ConnectorResult(
                        name: o.name, status: o.status.rawValue, records: o.findings.records, error: o.error)
                    c.attempts = o.attempts
                    c.durationMs = o.durationMs
                    c.details = o.findings.details.isEmpty ? nil : o.findings.details
                    return c
                }
                $0.note(f.status.rawValue.lowercased(), f.error)
            }
            records.append(rec)
            CrashPoint.hit("job.recorded")
        }
        if !finals.isEmpty { try store.syncDirectory() }
        var endEvents: [AuditEvent] = []
        for (f, rec) in zip(finals, records) {
            let id = rec.jobID
            queueNotification(rec, status: f.status)
            stats.jobsFinished[f.status, default: 0] += 1
            for o in f.w.outcomes { stats.connectors[o.name, default: RunStats.ConnectorTotals()].records += o.findings.records }
            try retireRequest(id, status: f.status, reason: f.error, syncDirectory: false)
            CrashPoint.hit("job.retired")
            endEvents.append(AuditEvent.jobFinished(
                    job: id, subject: rec.subject, status: f.status, records: f.w.outcomes.reduce(0) { $0 + $1.findings.records }))
            if let rid = rec.requestID { requestIndex[rid] = (id, f.status) }
            logger.info(
                "job finished",
                metadata: ["job": "\(id)", "status": "\(f.status.rawValue)", "outbox": "\(rec.outbox ?? "-")"])
        }
        if !finals.isEmpty { try FileSystem.syncDirectory(layout.active) }
        try audit.append(contentsOf: endEvents)
        return records
    }

    /// After a job ends, its claimed request (the only copy of the identifiers) is deleted, or, for a
    /// FAILED or PARTIAL job, kept in `failed/` with the reason so that nothing is lost.
    func retireRequest(_ jobID: String, status: JobStatus, reason: String?, syncDirectory: Bool = true) throws {
        let path = layout.activeRequest(jobID)
        guard FileSystem.exists(path) else { return }
        if status == .completed {
            try FileSystem.remove(layout.activeIdentity(jobID))
            try FileSystem.remove(path + ".sig")
            try FileSystem.remove(path)
            if syncDirectory { try FileSystem.syncDirectory(layout.active) }
        } else {
            try moveActiveAside(jobID, reason: reason ?? status.rawValue)
        }
    }

    func moveActiveAside(_ jobID: String, reason: String) throws {
        let text = "\(Timestamp.format(Date())) job \(jobID): \(reason)\n"
        try FileSystem.writeAtomically(layout.failed + "/\(jobID).reason", Array(text.utf8), mode: 0o600)
        if FileSystem.exists(layout.activeRequest(jobID) + ".sig") {
            try FileSystem.rename(layout.activeRequest(jobID) + ".sig", to: layout.failed + "/\(jobID).json.sig")
        }
        // The identity set goes with the request (before it, so a request in failed/ always has it).
        if FileSystem.exists(layout.activeIdentity(jobID)) {
            try FileSystem.rename(layout.activeIdentity(jobID), to: layout.failedIdentity(jobID))
        }
        try FileSystem.rename(layout.activeRequest(jobID), to: layout.failed + "/\(jobID).json")
        try FileSystem.syncDirectory(layout.failed)
        try FileSystem.syncDirectory(layout.active)
    }

    func fail(_ jobID: String, reason: String) throws {
        if store.exists(jobID) {
            let rec = try store.update(jobID) {
                $0.status = .failed
                $0.error = reason
                $0.finishedAt = Timestamp.format(Date())
                $0.note("failed", reason)
            }
            queueNotification(rec, status: .failed)
            stats.jobsFinished[.failed, default: 0] += 1
        }
        try moveActiveAside(jobID, reason: reason)
    }

    /// Queues the job-ended notification; a queue problem is logged and journaled, never fails the job.
    func queueNotification(_ rec: JobRecord, status: JobStatus) {
        guard let n = notifications, let event = NotifierConfig.Event(status: status) else { return }
        do {
            try n.enqueue(rec, event: event)
        } catch {
            logger.error("cannot queue notification", metadata: ["job": "\(rec.jobID)", "error": "\(error)"])
            try? audit.append(AuditEvent.notifyFailed(job: rec.jobID, subject: rec.subject, event: "job." + event.rawValue, reason: "could not be queued: \(error)"))
        }
    }

    /// Marks jobs that passed their deadline without ending: journals `job.overdue` and queues the
    /// `overdue` notification, once per job. Returns the ids newly found overdue.
    @discardableResult
    public func checkOverdue(now: Date = Date()) throws -> [String] {
        var found: [String] = []
        for r in try store.all(onError: { self.logger.error("\($0.message)") }) where r.isOverdue(now: now) && !(r.notified ?? []).contains("overdue") {
            let rec = try store.update(r.jobID) {
                $0.notified = ($0.notified ?? []) + ["overdue"]
                $0.note("overdue", "deadline \($0.deadline) passed before the job ended")
            }
            try audit.append(AuditEvent.jobOverdue(job: rec.jobID, subject: rec.subject, deadline: rec.deadline, status: rec.status))
            logger.warning("job is overdue", metadata: ["job": "\(rec.jobID)", "deadline": "\(rec.deadline)"])
            if let n = notifications {
                do { try n.enqueue(rec, event: .overdue, now: now) } catch {
                    logger.error("cannot queue notification", metadata: ["job": "\(rec.jobID)", "error": "\(error)"])
                }
            }
            found.append(rec.jobID)
        }
        return found
    }

    func relative(_ path: String) -> String {
        path.hasPrefix(layout.root + "/") ? String(path.dropFirst(layout.root.count + 1)) : path
    }
}
