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
    public let logger: Logger
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
    }

    /// What crash recovery found and fixed.
    public struct RecoveryReport: Sendable {
        public var requeued: [String] = []
        public var recreated: [String] = []
        public var removedWork: Int = 0
        public var completedCleanup: [String] = []
        public var isEmpty: Bool { requeued.isEmpty && recreated.isEmpty && removedWork == 0 && completedCleanup.isEmpty }
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
        self.logger = logger
        self.connectors = connectors
        self.finisher = finisher
        self.connectorRunner = ConnectorRunner(concurrency: config.concurrency)
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
        for name in try FileSystem.list(layout.active) where !name.hasPrefix(".") && !name.hasSuffix(".json.sig") {
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
                    try store.update(jobID) {
                        $0.status = .pending
                        $0.note("recovered", "the previous run stopped while this job was running; it is run again")
                    }
                    try audit.append(AuditEvent("crash.recovered", jobID: jobID, subject: rec.subject, details: [
                        JSONMember(key: "was", value: .string("RUNNING"))
                    ]))
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
                    try audit.append(AuditEvent("crash.recovered", jobID: jobID, subject: rec.subject, details: [
                        JSONMember(key: "was", value: .string("CLAIMED"))
                    ]))
                    report.recreated.append(jobID)
                } catch {
                    try moveActiveAside(jobID, reason: "the claimed request no longer parses: \(error)")
                }
            }
        }
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

    // MARK: - Intake

    /// One look at the inbox: refuses what must be refused, claims what has settled and parses.
    public func intake(now: Date = Date()) throws -> IntakeReport {
        var report = IntakeReport()
        var present = Set<String>()
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
                        metadata: ["file": "\(name)", "retry_for_s": "\(Int(rejectAfterSeconds - age))"])
                    report.waiting.append(name)
                    continue
                }
                tracker.forget(name)
                try reject(name, reason: error.message, into: &report)
                continue
            }
            if let rid = request.requestID, let first = requestIndex[rid] {
                tracker.forget(name)
                try reject(
                    name,
                    reason: "duplicate: request_id \"\(rid)\" was already received as job \(first.jobID) (\(first.status.rawValue)); no second job was started",
                    into: &report, type: "request.duplicate", jobID: first.jobID)
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
            if let jobID = try claim(name, request: request, settled: st, signer: signer) {
                report.claimed.append(jobID)
            } else {
                report.waiting.append(name)
            }
        }
        tracker.retain(present)
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

    func reject(_ name: String, reason: String, into report: inout IntakeReport, type: String = "request.rejected", jobID: String? = nil) throws {
        let stored = try inbox.reject(name, reason: reason)
        if !name.hasSuffix(".sig"), FileSystem.exists(layout.inbox + "/" + name + ".sig") {
            try inbox.reject(name + ".sig", reason: "the signature of a rejected request: \(reason)")
        }
        report.rejected.append((name, reason))
        stats.rejected += 1
        logger.warning("request rejected", metadata: ["file": "\(name)", "rejected_as": "\(stored)", "reason": "\(reason)"])
        try audit.append(AuditEvent(type, jobID: jobID, details: [
            JSONMember(key: "file", value: .string("rejected/" + stored)),
            JSONMember(key: "reason", value: .string(reason)),
        ]))
    }

    /// Moves a settled, valid drop into `active/` under a new job id and writes its PENDING record.
    func claim(_ name: String, request: DSARRequest, settled: FileSystem.Status, signer: String? = nil) throws -> String? {
        let jobID = UUIDv7.make()
        let from = layout.inbox + "/" + name
        let to = layout.activeRequest(jobID)
        if signer != nil {
            // The signature travels with the request (first, so a crash never leaves a claimed request without it).
            try FileSystem.rename(from + ".sig", to: to + ".sig")
        }
        guard try FileSystem.renameNoReplace(from, to: to) else { return nil }
        try FileSystem.syncDirectory(layout.active)
        try FileSystem.syncDirectory(layout.inbox)
        CrashPoint.hit("claim.renamed")
        // A writer that resumed between our read and the move: give the file back and look again.
        // (rename changes ctime, so compare what a writer would change: size, mtime, inode.)
        if let now = try FileSystem.lstatus(to),
            now.size != settled.size || now.mtimeNanos != settled.mtimeNanos || now.inode != settled.inode
        {
            try FileSystem.rename(to, to: from)
            try FileSystem.syncDirectory(layout.inbox)
            return nil
        }
        _ = chmod(to, 0o600)
        let rec = try createRecord(jobID: jobID, request: request, dropTime: settled.mtime, note: "claimed from inbox", signer: signer)
        CrashPoint.hit("claim.recorded")
        try audit.append(AuditEvent("job.claimed", jobID: jobID, subject: rec.subject, details: [
            JSONMember(key: "file", value: .string("active/\(jobID).json"))
        ]))
        try audit.append(AuditEvent("request.received", jobID: jobID, subject: rec.subject, details: [
            JSONMember(key: "action", value: .string(request.action.rawValue)),
            JSONMember(key: "regulation", value: .string(request.regulation.rawValue)),
            JSONMember(key: "identifier_types", value: .array(request.identifiers.map { .string($0.type) })),
            JSONMember(key: "signer", value: .str(signer)),
        ]))
        logger.info("request claimed", metadata: ["file": "\(name)", "job": "\(jobID)", "action": "\(request.action.rawValue)"])
        return jobID
    }

    @discardableResult
    func createRecord(jobID: String, request: DSARRequest, dropTime: Date, note: String, signer: String? = nil) throws -> JobRecord {
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
    /// `shouldStop` is checked before each job is finished; unfinished jobs stay PENDING.
    public func runPending(shouldStop: @Sendable () -> Bool = { false }) async throws -> [JobRecord] {
        let ids = try pendingJobs()
        guard !ids.isEmpty, !shouldStop() else { return [] }
        var jobs: [(record: JobRecord, request: DSARRequest)] = []
        for id in ids {
            let path = layout.activeRequest(id)
            let request: DSARRequest
            do {
                request = try parser.parse(try FileSystem.readFile(path, limit: config.maxRequestBytes))
            } catch {
                try fail(id, reason: "the claimed request no longer parses: \(error)")
                continue
            }
            let rec = try store.update(id) {
                $0.status = .running
                $0.startedAt = Timestamp.format(Date())
                $0.attempts += 1
                $0.note("started", "attempt \($0.attempts)")
            }
            try audit.append(AuditEvent("job.started", jobID: id, subject: rec.subject, details: [
                JSONMember(key: "attempt", value: .int(rec.attempts))
            ]))
            jobs.append((rec, request))
            CrashPoint.hit("job.running")
        }
        guard !jobs.isEmpty else { return [] }
        var scanJobs: [ScanJob] = []
        for j in jobs {
            let work = layout.workDir(j.record.jobID)
            try FileSystem.removeTree(work)
            try FileSystem.makeDirectory(work, mode: 0o700)
            scanJobs.append(
                ScanJob(
                    jobID: j.record.jobID, action: j.request.action, identifiers: j.request.identifiers,
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
        for (k, j) in jobs.enumerated() {
            if let last = segments.last?.last, jobs[last].request.action == .delete, j.request.action != .delete {
                segments.append([k])
            } else if segments.isEmpty {
                segments.append([k])
            } else {
                segments[segments.count - 1].append(k)
            }
        }
        var finished: [JobRecord] = []
        for segment in segments {
            let scanned = try await scanWithExpansion(segment.map { scanJobs[$0] }, subjects: subjects)
            CrashPoint.hit("job.scanned")
            let deletes = segment.filter { jobs[$0].request.action == .delete && !jobs[$0].record.dryRun }
            var finishOrder = segment.filter { !deletes.contains($0) }
            var erasure: [String: ErasureOutcome] = [:]
            if !deletes.isEmpty && !shouldStop() {
                // Exports of this segment were searched before the erasure; seal them first.
                for k in finishOrder { finished += try finishOne(jobs[k], scanned, shouldStop) }
                finishOrder = []
                erasure = try await eraseAll(deletes.map { k in
                    let id = jobs[k].record.jobID
                    return EraseJob(jobID: id, identifiers: jobs[k].request.identifiers + (scanned.derived[id] ?? []).map(\.0), dryRun: false)
                }, subjects: subjects)
                finishOrder = deletes
            } else {
                finishOrder += deletes
            }
            for k in finishOrder { finished += try finishOne(jobs[k], scanned, shouldStop, erasure: erasure[jobs[k].record.jobID]) }
        }
        return finished
    }

    func finishOne(
        _ j: (record: JobRecord, request: DSARRequest), _ scanned: ScanResult, _ shouldStop: () -> Bool, erasure: ErasureOutcome? = nil
    ) throws -> [JobRecord] {
        let id = j.record.jobID
        if shouldStop() && erasure == nil {
            try store.update(id) {
                $0.status = .pending
                $0.note("requeued", "dsar was asked to stop before this job finished")
            }
            try FileSystem.removeTree(layout.workDir(id))
            return []
        }
        let outcomes: [ConnectorOutcome] = scanned.results[id] ?? []
        return [try finish(record: j.record, request: j.request, outcomes: outcomes, derived: scanned.derived[id] ?? [], erasure: erasure)]
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
                        f.detail = f.detail.map { Processor.scrub($0, j.identifiers) }
                        out[j.jobID]!.files.append(f)
                        try audit.append(AuditEvent(f.strategy == "retain" ? "file.retained" : "file.erased", jobID: j.jobID, subject: subjects[j.jobID], details: [
                            JSONMember(key: "connector", value: .string(f.connector)), JSONMember(key: "file", value: .string(f.file)),
                            JSONMember(key: "strategy", value: .string(f.strategy)), JSONMember(key: "deleted", value: .int(f.deleted)),
                            JSONMember(key: "redacted", value: .int(f.redacted)), JSONMember(key: "retained", value: .int(f.retained)),
                            JSONMember(key: "remaining", value: .int(f.remaining)), JSONMember(key: "sha256_before", value: .str(f.sha256Before)),
                            JSONMember(key: "sha256_after", value: .str(f.sha256After)),
                        ]))
                    }
                }
            } catch {
                logger.error("erasure failed", metadata: ["connector": "\(c.name)", "error": "\(error)"])
                for j in jobs {
                    let reason = Processor.scrub("\(error)", j.identifiers)
                    out[j.jobID]!.errors[c.name] = reason
                    try audit.append(AuditEvent("connector.failed", jobID: j.jobID, subject: subjects[j.jobID], details: [
                        JSONMember(key: "connector", value: .string(c.name)), JSONMember(key: "phase", value: .string("erase")),
                        JSONMember(key: "reason", value: .string(reason)),
                    ]))
                }
            }
        }
        return out
    }

    /// What the connectors found, per job, after identity expansion reached its fixpoint.
    struct ScanResult {
        var results: [String: [ConnectorOutcome]] = [:]
        var derived: [String: [(Identifier, String)]] = [:]
    }

    /// Removes a subject's identifier values from free text (a plugin's error message may echo them)
    /// before it reaches a job record, manifest or the journal.
    public static func scrub(_ text: String, _ ids: [Identifier]) -> String {
        var out = text
        for id in ids.sorted(by: { $0.value.count > $1.value.count }) where !id.value.isEmpty {
            out = out.replacingOccurrences(of: id.value, with: "<\(id.type)>", options: [.caseInsensitive])
            if id.type == "email" {
                out = out.replacingOccurrences(
                    of: id.value.replacingOccurrences(of: "@", with: "%40"), with: "<\(id.type)>", options: [.caseInsensitive])
            }
        }
        return out
    }

    /// Maximum scan rounds: the first, plus re-scans for jobs whose identity grew.
    public var maxExpansionRounds = 4

    /// Runs all connectors over the batch; jobs whose rows revealed new identifiers (identity
    /// expansion) are scanned again with the larger set, until nothing new appears (bounded).
    func scanWithExpansion(_ scanJobs: [ScanJob], subjects: [String: String]) async throws -> ScanResult {
        var out = ScanResult()
        var round = 0
        var roundJobs = scanJobs
        while !roundJobs.isEmpty && round < maxExpansionRounds {
            round += 1
            for job in roundJobs {
                for c in connectors {
                    try audit.append(AuditEvent("connector.started", jobID: job.jobID, subject: subjects[job.jobID], details: [
                        JSONMember(key: "connector", value: .string(c.name)), JSONMember(key: "round", value: .int(round)),
                    ]))
                }
            }
            let batch = ScanBatch(jobs: roundJobs)
            let runner = connectorRunner
            let cs = connectors
            let log = logger
            let results: [ConnectorRunner.BatchResult]
            if let progress {
                results = await progress.track(cs, round: round) { await runner.run(cs, batch: batch, logger: log, progress: progress) }
            } else {
                results = await runner.run(cs, batch: batch, logger: log)
            }
            for r in results {
                var t = stats.connectors[r.name] ?? RunStats.ConnectorTotals()
                t.scans += 1
                t.seconds += Double(r.durationMs) / 1000
                if r.error != nil { t.failures += 1 }
                t.bytesScanned += r.findings.values.first.flatMap { $0.details["bytes_scanned"].flatMap { Int64($0) } } ?? 0
                stats.connectors[r.name] = t
            }
            var next: [ScanJob] = []
            for job in roundJobs {
                let id = job.jobID
                out.results[id] = results.map { r in
                    ConnectorOutcome(
                        name: r.name, metadata: r.metadata, status: r.error == nil ? .ok : .failed,
                        findings: r.findings[id] ?? ConnectorFindings(), error: r.error.map { Processor.scrub($0, job.identifiers) }, attempts: r.attempts,
                        durationMs: r.durationMs)
                }
                for r in results {
                    if r.attempts > 1 {
                        try audit.append(AuditEvent("connector.retried", jobID: id, subject: subjects[id], details: [
                            JSONMember(key: "connector", value: .string(r.name)), JSONMember(key: "attempts", value: .int(r.attempts)),
                        ]))
                    }
                    let type = r.error == nil ? "connector.finished" : "connector.failed"
                    var details: [JSONMember] = [
                        JSONMember(key: "connector", value: .string(r.name)),
                        JSONMember(key: "records", value: .int(r.findings[id]?.records ?? 0)),
                        JSONMember(key: "bytes_scanned", value: .number(r.findings[id]?.details["bytes_scanned"] ?? "0")),
                        JSONMember(key: "duration_ms", value: .int(r.durationMs)),
                        JSONMember(key: "attempts", value: .int(r.attempts)), JSONMember(key: "round", value: .int(round)),
                    ]
                    if let e = r.error { details.append(JSONMember(key: "reason", value: .string(Processor.scrub(e, job.identifiers)))) }
                    try audit.append(AuditEvent(type, jobID: id, subject: subjects[id], details: details))
                }
                var known = Set(job.identifiers)
                var new: [(Identifier, String)] = []
                for r in results {
                    for (ident, provenance) in r.findings[id]?.derived ?? [] where known.insert(ident).inserted {
                        new.append((ident, provenance))
                    }
                }
                guard !new.isEmpty else { continue }
                out.derived[id, default: []] += new
                for (ident, provenance) in new {
                    try audit.append(AuditEvent("identifiers.derived", jobID: id, subject: subjects[id], details: [
                        JSONMember(key: "type", value: .string(ident.type)), JSONMember(key: "provenance", value: .string(provenance)),
                    ]))
                }
                var grown = job
                grown.identifiers = known.sorted()
                next.append(grown)
            }
            roundJobs = next
        }
        return out
    }

    func finish(
        record: JobRecord, request: DSARRequest, outcomes: [ConnectorOutcome], derived: [(Identifier, String)],
        erasure: ErasureOutcome? = nil
    ) throws -> JobRecord {
        let id = record.jobID
        let work = layout.workDir(id)
        let failedCount = outcomes.filter { $0.status == .failed }.count
        var status: JobStatus =
            failedCount == 0 ? .completed : (failedCount == outcomes.count ? .failed : .partial)
        var error: String? =
            failedCount == 0
            ? nil : outcomes.filter { $0.status == .failed }.map { "\($0.name): \($0.error ?? "failed")" }.joined(separator: "; ")
        if let erasure, status != .failed {
            var problems = erasure.errors.sorted { $0.key < $1.key }.map { "\($0.key): erasure failed: \($0.value)" }
            if erasure.unexpectedRemaining > 0 {
                problems.append("\(erasure.unexpectedRemaining) records of the subject remain after erasure (see the receipt)")
            }
            if !problems.isEmpty {
                status = erasure.files.contains { $0.deleted + $0.redacted > 0 } || status == .partial ? .partial : .failed
                error = ([error].compactMap { $0 } + problems).joined(separator: "; ")
            }
        }
        var outbox: String?
        if status != .failed {
            do {
                try FindingsWriter.write(outcomes, workDir: work)
                var rec = record
                rec.status = status
                rec.error = error
                let path = try finisher(request.action).finish(
                    {
                        var fj = FinishingJob(
                            record: rec, request: request, identifiers: request.identifiers + derived.map(\.0), workDir: work,
                            outcomes: outcomes)
                        fj.erasure = erasure
                        return fj
                    }(), layout: layout, logger: logger)
                outbox = path
                if let m = try? FileSystem.readFile(path + "/manifest.json", limit: 64 << 20) {
                    var h = StreamingSHA256()
                    h.update(m)
                    try audit.append(AuditEvent(request.action == .export ? "bundle.sealed" : "receipt.sealed", jobID: id, subject: record.subject, details: [
                        JSONMember(key: "manifest_sha256", value: .string(h.hexDigest()))
                    ]))
                }
                try audit.append(AuditEvent("job.published", jobID: id, subject: record.subject, details: [
                    JSONMember(key: "outbox", value: .string(relative(path)))
                ]))
            } catch let failure {
                status = .failed
                error = "publishing failed: \(failure)"
                logger.error("publishing failed", metadata: ["job": "\(id)", "error": "\(failure)"])
            }
        }
        let derivedRefs = derived.map { (ident, provenance) in
            JobRecord.IdentifierRef(type: ident.type, pseudonym: pseudonymizer.pseudonym(ident), provenance: provenance)
        }
        let finalStatus = status
        let finalError = error
        let rec = try store.update(id) {
            $0.status = finalStatus
            $0.error = finalError
            $0.finishedAt = Timestamp.format(Date())
            $0.outbox = outbox.map { self.relative($0) }
            $0.identifiers += derivedRefs
            $0.connectors = outcomes.map { o in
                var c = JobRecord.ConnectorResult(
                    name: o.name, status: o.status.rawValue, records: o.findings.records, error: o.error)
                c.attempts = o.attempts
                c.durationMs = o.durationMs
                c.details = o.findings.details.isEmpty ? nil : o.findings.details
                return c
            }
            $0.note(finalStatus.rawValue.lowercased(), finalError)
        }
        CrashPoint.hit("job.recorded")
        queueNotification(rec, status: finalStatus)
        stats.jobsFinished[finalStatus, default: 0] += 1
        for o in outcomes { stats.connectors[o.name, default: RunStats.ConnectorTotals()].records += o.findings.records }
        try FileSystem.removeTree(work)
        try retireRequest(id, status: finalStatus, reason: finalError)
        CrashPoint.hit("job.retired")
        try audit.append(AuditEvent("job.finished", jobID: id, subject: rec.subject, details: [
            JSONMember(key: "status", value: .string(finalStatus.rawValue)),
            JSONMember(key: "records", value: .int(outcomes.reduce(0) { $0 + $1.findings.records })),
        ]))
        if let rid = rec.requestID { requestIndex[rid] = (id, finalStatus) }
        logger.info(
            "job finished",
            metadata: ["job": "\(id)", "status": "\(finalStatus.rawValue)", "outbox": "\(rec.outbox ?? "-")"])
        return rec
    }

    /// After a job ends, its claimed request (the only copy of the identifiers) is deleted, or, for a
    /// FAILED or PARTIAL job, kept in `failed/` with the reason so that nothing is lost.
    func retireRequest(_ jobID: String, status: JobStatus, reason: String?) throws {
        let path = layout.activeRequest(jobID)
        guard FileSystem.exists(path) else { return }
        if status == .completed {
            try FileSystem.remove(path + ".sig")
            try FileSystem.remove(path)
            try FileSystem.syncDirectory(layout.active)
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
            try? audit.append(AuditEvent("notify.failed", jobID: rec.jobID, subject: rec.subject, details: [
                JSONMember(key: "event", value: .string("job." + event.rawValue)),
                JSONMember(key: "reason", value: .string("could not be queued: \(error)")),
            ]))
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
            try audit.append(AuditEvent("job.overdue", jobID: rec.jobID, subject: rec.subject, details: [
                JSONMember(key: "deadline", value: .string(rec.deadline)), JSONMember(key: "status", value: .string(rec.status.rawValue)),
            ]))
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
