import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What one pass over the inbox did.
package struct IntakeResult: Sendable {
    /// Ids of the jobs claimed, in received order.
    package var claims: [String] = []
    /// Drops moved to `rejected/` (their names there, possibly personal data: print pseudonyms),
    /// with the full reason (as in `rejected/<name>.reason`, quoting the drop) and the journaled
    /// one (`redacted`: no value from the drop, the name replaced by the drop's pseudonym).
    package var rejected: [(name: String, reason: String, redacted: String)] = []
    /// Candidates not taken yet (not settled, or incomplete and young).
    package var waiting: [String] = []
    /// What a waiting drop waits for, when it is not just settling (e.g. its signature file).
    package var waitingFor: [String: String] = [:]

    package init() {}
}

/// Takes requests from `inbox/`: waits for drops to settle, parses them, refuses what must be
/// refused (with a reason, under the drop's pseudonym), checks signatures, and claims the rest as
/// PENDING jobs (one journal write and one fsync per directory per pass).
final class RequestIntake {
    let layout: SpoolLayout
    let config: SpoolConfig
    let store: JobStore
    let inbox: Inbox
    let parser: RequestParser
    let pseudonymizer: Pseudonymizer
    let audit: any AuditSink
    let logger: Logger
    /// Seconds an incomplete drop is waited for before it is rejected.
    let rejectAfterSeconds: Double
    /// Every job is a dry run (`--dry-run`).
    let forceDryRun: Bool
    /// nil when signed requests are not required.
    let signatures: SignatureCheck?
    /// `serve.require_signature` without `require_signed_requests`: the check of the `.sig` dsar serve
    /// wrote beside a request it verified (its signer is recorded as for a signed drop).
    let serverSignatures: SignatureCheck?
    /// Where the `rejected` notification is queued (nil: none configured).
    let notifications: Notifications?

    var tracker: SettleTracker
    var index = RequestIndex()
    /// Drops already logged as waiting for their signature (logged once, not on every pass).
    var sigWaitLogged = Set<String>()

    init(
        layout: SpoolLayout, config: SpoolConfig, store: JobStore, parser: RequestParser, pseudonymizer: Pseudonymizer,
        audit: any AuditSink,
        logger: Logger, settleSeconds: Double, rejectAfterSeconds: Double, forceDryRun: Bool,
        notifications: Notifications? = nil
    ) throws {
        self.layout = layout
        self.config = config
        self.store = store
        self.inbox = Inbox(layout: layout)
        self.parser = parser
        self.pseudonymizer = pseudonymizer
        self.audit = audit
        self.logger = logger
        self.rejectAfterSeconds = rejectAfterSeconds
        self.forceDryRun = forceDryRun
        self.notifications = notifications
        self.signatures = try SignatureCheck.load(config, layout: layout)
        self.serverSignatures =
            signatures == nil && config.serve.requireSignature == true
            ? try SignatureCheck.loadSigners(config, layout: layout) : nil
        self.tracker = SettleTracker(settle: settleSeconds)
    }

    /// Seconds a drop must stay unchanged before it is taken.
    var settleSeconds: Double { tracker.settle }

    /// When the tracker next expects a waiting drop to settle.
    var nextSettleTime: Date? { tracker.nextSettleTime() }

    /// One look at the inbox: refuses what must be refused, claims what has settled and parses.
    func intake(now: Date = Date()) throws -> IntakeResult {
        var claims: [Claim] = []
        let result: IntakeResult
        do {
            result = try pass(now: now, claims: &claims)
        } catch {
            // Drops already moved into active/ get their records now (else recovery gives them one).
            try? commit(claims)
            throw error
        }
        try commit(claims)
        return result
    }

    func pass(now: Date, claims: inout [Claim]) throws -> IntakeResult {
        var report = IntakeResult()
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
            // A server-written request (dsar serve) keeps the job id the server answered with.
            let serverJobID: String?
            switch ServerDrop.jobID(fromName: name, pseudonymizer: pseudonymizer) {
            case .success(let id): serverJobID = id
            case .failure(let why):
                tracker.forget(name)
                try reject(name, reason: why.message, into: &report)
                continue
            }
            present.insert(name)
            if signatures != nil {
                // The pickup rule waits for both files.
                let sigName = name + ".sig"
                guard let sig = try FileSystem.lstatus(layout.inbox + "/" + sigName) else {
                    if now.timeIntervalSince(st.mtime) >= rejectAfterSeconds {
                        tracker.forget(name)
                        try reject(
                            name,
                            reason:
                                "no signature: \(sigName) is missing and signed requests are required (sign with ssh-keygen -Y sign -f KEY -n dsar-request \(name))",
                            into: &report)
                    } else {
                        _ = tracker.observe(name, st, now: now)
                        report.waiting.append(name)
                        report.waitingFor[name] = sigName
                        if sigWaitLogged.insert(name).inserted {
                            logger.info(
                                "drop is waiting for its .sig (signed requests are required)",
                                metadata: [
                                    "drop": "\(pseudonymizer.dropName(name))",
                                    "reject_in_s": "\(Int(rejectAfterSeconds - now.timeIntervalSince(st.mtime)))",
                                ])
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
                        metadata: [
                            "drop": "\(pseudonymizer.dropName(name))",
                            "retry_for_s": "\(Int(rejectAfterSeconds - age))",
                        ])
                    report.waiting.append(name)
                    continue
                }
                tracker.forget(name)
                try reject(name, error, into: &report)
                continue
            }
            if let why = unknownIdentifierType(request) {
                tracker.forget(name)
                try reject(name, why, into: &report)
                continue
            }
            if let first = try index.duplicate(of: request.requestID, store: store, logger: logger),
                let rid = request.requestID
            {
                tracker.forget(name)
                try reject(
                    name,
                    RequestProblem(value: rid) { v in
                        "duplicate: request_id \(v) was already received as job \(first.jobID) (\(first.status.rawValue)); no second job was started"
                    },
                    into: &report, duplicateOf: first.jobID)
                continue
            }
            if let id = serverJobID,
                FileSystem.exists(layout.jobRecord(id)) || FileSystem.exists(layout.activeRequest(id))
            {
                tracker.forget(name)
                try reject(
                    name,
                    reason:
                        "duplicate job id: job \(id) already exists; a request file may not reuse the job id of another (no second job was started)",
                    into: &report)
                continue
            }
            var signer: String?
            if let signatures {
                tracker.forget(name + ".sig")
                switch signatures.verify(name, sigPath: layout.inbox + "/" + name + ".sig", bytes: bytes, now: now) {
                case .success(let principal): signer = principal
                case .failure(let why):
                    tracker.forget(name)
                    try reject(name, reason: why.message, into: &report)
                    continue
                }
            } else if serverJobID != nil, let check = serverSignatures,
                FileSystem.exists(layout.inbox + "/" + name + ".sig")
            {
                // dsar serve wrote the .sig before the request: check it as for a signed drop.
                switch check.verify(name, sigPath: layout.inbox + "/" + name + ".sig", bytes: bytes, now: now) {
                case .success(let principal): signer = principal
                case .failure(let why):
                    tracker.forget(name)
                    try reject(name, reason: why.message, into: &report)
                    continue
                }
            }
            tracker.forget(name)
            if let c = try claim(name, request: request, settled: st, signer: signer, jobID: serverJobID) {
                claims.append(c)
                report.claims.append(c.jobID)
            } else {
                report.waiting.append(name)
            }
        }
        try rejectOrphanSignatures(entries, now: now, into: &report)
        tracker.retain(present)
        sigWaitLogged.formIntersection(present)
        return report
    }

    /// A `.sig` whose request is not in the inbox (its upload never came, or `dsar serve` stopped
    /// between writing the two) is set aside into `rejected/` once it is as old as a request may
    /// wait for its signature (`reject_after_seconds`): the inbox does not keep it forever and the
    /// operator sees it. A signature that moved with its request during this pass is not affected.
    func rejectOrphanSignatures(
        _ entries: [(name: String, status: FileSystem.Status)], now: Date, into report: inout IntakeResult
    ) throws {
        let names = Set(entries.map(\.name))
        for (name, st) in entries where name.hasSuffix(".sig") && !name.hasPrefix(".") && name.count > 4 {
            guard !names.contains(String(name.dropLast(4))), st.kind == .regular,
                now.timeIntervalSince(st.mtime) >= rejectAfterSeconds,
                FileSystem.exists(layout.inbox + "/" + name)
            else { continue }
            try reject(
                name,
                reason:
                    "\(name) is a signature without its request: the file it signs has not been in the inbox for \(Int(rejectAfterSeconds)) s (upload the request and its .sig together)",
                into: &report)
        }
    }

    /// The unknown-identifier-type rule: a request naming a type no connector searches for would
    /// get an empty answer. Returns the reason to reject it, nil when every type is known (the
    /// unknown type, from the drop, is quoted only in the full message).
    func unknownIdentifierType(_ request: DSARRequest) -> RequestProblem? { config.unknownIdentifierType(request) }

    /// Moves a drop to `rejected/` with a reason dsar wrote itself (anything quoted in it that dsar
    /// does not know counts as a value from the drop: see ``RequestProblem/scrub(_:)``).
    func reject(
        _ name: String, reason: String, into report: inout IntakeResult, duplicateOf jobID: String? = nil
    ) throws {
        // The name first (it may hold a quote), then what is quoted.
        let redacted = RequestProblem.scrub(RequestIntake.withoutName(reason, name, pseudonymizer.dropName(name)))
        try reject(name, RequestProblem(message: reason, redacted: redacted), into: &report, duplicateOf: jobID)
    }

    /// Moves a drop to `rejected/` (its name kept there, with the full reason: the operator's copy,
    /// beside the drop that holds the same data) and journals, logs and notifies it under its
    /// pseudonym only, with the redacted reason: a file name may be personal data
    /// (`alice@example.com.json`), and so may any value of the drop.
    func reject(
        _ name: String, _ problem: RequestProblem, into report: inout IntakeResult, duplicateOf jobID: String? = nil
    ) throws {
        let reason = problem.message
        let drop = pseudonymizer.dropName(name)
        try inbox.reject(name, reason: reason, pseudonym: drop)
        if !name.hasSuffix(".sig"), FileSystem.exists(layout.inbox + "/" + name + ".sig") {
            try inbox.reject(name + ".sig", reason: "the signature of a rejected request: \(reason)", pseudonym: drop)
        }
        let safe = RequestIntake.withoutName(problem.redacted, name, drop)
        report.rejected.append((name, reason, safe))
        logRejection(drop: drop, reason: safe, duplicate: jobID != nil)
        try audit.append(
            (jobID.map { AuditEvent.requestDuplicate(firstJob: $0, drop: drop, reason: safe) }
                ?? .requestRejected(drop: drop, reason: safe)))
        queueRejected(drop: drop, reason: safe)
    }

    /// Queues the `rejected` notification (pseudonym and the name-free reason only); a queue
    /// problem is logged, never stops intake.
    func queueRejected(drop: String, reason: String) {
        guard let n = notifications else { return }
        do { try n.enqueueRejected(drop: drop, reason: reason) } catch {
            logger.error("cannot queue notification", metadata: ["drop": "\(drop)", "error": "\(error)"])
        }
    }

    func logRejection(drop: String, reason: String, duplicate: Bool) {
        logger.warning(
            duplicate ? "duplicate request rejected" : "request rejected",
            metadata: ["drop": "\(drop)", "reason": "\(reason)", "see": "rejected/*.reason (grep \(drop))"])
    }

    /// A reason with the drop's file name (which may be personal data) replaced by its pseudonym
    /// where dsar's messages write it: whole occurrences of `name` only, as a token of its own or
    /// the last part of a path (`inbox/c.json`, `c.json.sig`), never a part of another word
    /// (`c.json` does not touch the "c" of "column").
    static func withoutName(_ reason: String, _ name: String, _ drop: String) -> String {
        let b = Array(reason.utf8)
        let n = Array(name.utf8)
        guard !n.isEmpty, b.count >= n.count else { return reason }
        /// Bytes that may stand right before a file name dsar writes: start, space, quote, bracket, `/`, `:`, `=`.
        func opens(_ c: UInt8) -> Bool {
            c <= 0x20 || c == 0x22 || c == 0x27 || c == 0x28 || c == 0x2F || c == 0x3A || c == 0x3D || c == 0x5B
                || c == 0x3C || c == 0x60
        }
        /// Bytes that may follow it: end, space, punctuation (`.` for `.sig` or the end of a sentence).
        func closes(_ c: UInt8) -> Bool {
            c <= 0x20 || c == 0x22 || c == 0x27 || c == 0x29 || c == 0x2C || c == 0x2E || c == 0x3A || c == 0x3B
                || c == 0x5D || c == 0x3E || c == 0x60
        }
        let d = Array(drop.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            if b[i] == n[0], i + n.count <= b.count, b[i..<(i + n.count)].elementsEqual(n),
                i == 0 || opens(b[i - 1]), i + n.count == b.count || closes(b[i + n.count])
            {
                out += d
                i += n.count
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Inbox entries whose names are not valid UTF-8 cannot be handled by name: each `*.json` one is
    /// moved to `rejected/` under a safe name, with a reason that shows the name escaped (`\xff`).
    func rejectUndecodableNames(into report: inout IntakeResult) throws {
        for raw in try inbox.undecodableNames() {
            let escaped = Inbox.escape(raw)
            // The same names as valid ones are ignored (dotfiles, uploads in progress, non-JSON).
            if escaped.hasPrefix(".") || !escaped.hasSuffix(".json")
                || PickupRules.partialSuffixes.contains(where: { escaped.hasSuffix($0) })
            {
                continue
            }
            let drop = pseudonymizer.dropName(raw)
            let reason =
                "the file name \"\(escaped)\" is not valid UTF-8 (bytes shown as \\xNN); rename the file using UTF-8 (e.g. only letters, digits, '-', '_' and '.') and upload it again"
            let stored = try inbox.rejectRaw(
                raw, as: "\(drop).json", reason: reason, escapedName: escaped, pseudonym: drop)
            let redacted = "the file name is not valid UTF-8; it was moved to rejected/\(stored)"
            report.rejected.append((stored, reason, redacted))
            logRejection(drop: drop, reason: redacted, duplicate: false)
            try audit.append(
                AuditEvent.requestRejected(
                    drop: drop, reason: "the file name is not valid UTF-8", file: "rejected/" + stored))
            queueRejected(drop: drop, reason: redacted)
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
    func claim(
        _ name: String, request: DSARRequest, settled: FileSystem.Status, signer: String? = nil,
        jobID given: String? = nil
    ) throws -> Claim? {
        let jobID = given ?? UUIDv7.make()
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
        if let rid = request.requestID { try index.record(rid, jobID: jobID, store: store, logger: logger) }
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
            var rec = JobRecord.claimed(
                jobID: c.jobID, request: c.request, dropTime: c.settled.mtime, note: "claimed from inbox",
                signer: c.signer,
                forceDryRun: forceDryRun, pseudonymizer: pseudonymizer)
            // The report's language is fixed at claim time: the request's, else the spool default.
            rec.language = c.request.language ?? config.report.defaultLanguage
            return rec
        }
        var events: [AuditEvent] = []
        for (c, rec) in zip(claims, records) {
            events.append(AuditEvent.jobClaimed(job: c.jobID, subject: rec.subject, file: "active/\(c.jobID).json"))
            events.append(
                AuditEvent.requestReceived(job: c.jobID, subject: rec.subject, request: c.request, signer: c.signer))
        }
        try audit.append(contentsOf: events)
        // In phases: every record written, all fsynced, all renamed, one fsync of jobs/.
        try store.withRecordsLock {
            try store.saveAll(records) { _ in CrashPoint.hit("claim.recorded") }
        }
        for c in claims {
            logger.info(
                "request claimed",
                metadata: [
                    "drop": "\(pseudonymizer.dropName(c.name))", "job": "\(c.jobID)",
                    "action": "\(c.request.action.rawValue)",
                ])
        }
    }
}

extension SpoolConfig {
    /// The unknown-identifier-type rule (also applied by `dsar serve` before it accepts a request):
    /// the reason to refuse a request naming a type no connector searches for, nil when all are
    /// known. The unknown type, from the request, is quoted only in the full message.
    package func unknownIdentifierType(_ request: DSARRequest) -> RequestProblem? {
        let known = knownIdentifierTypes.sorted()
        guard let t = Set(request.identifiers.map(\.type)).subtracting(knownIdentifierTypes).sorted().first
        else { return nil }
        let hint = ConfigSuggest.didYouMean(t, among: known).map { " (did you mean \"\($0)\"?)" } ?? ""
        func text(_ quoted: String, _ bare: String) -> String {
            "identifier type \(quoted) is not known\(hint): no connector could search for it, so the answer would be empty. Known types: \(known.joined(separator: ", ")); declare custom types in config.yaml (identifier_types: [ \(bare) ])"
        }
        let p = RequestProblem.placeholder
        return RequestProblem(message: text("\"\(t)\"", t), redacted: text(p, p))
    }
}
