import DSARCore
import Foundation
import NIOConcurrencyHelpers

/// Everything the server does with the spool, as plain blocking functions (the routes call them
/// through ``BlockingIO``). It reads job records and the journal and writes into `inbox/` and
/// `serve/`; it never takes the spool lock and never runs a job (`dsar run`/`watch` do).
package final class SpoolAccess: Sendable {
    /// The spool.
    package let layout: SpoolLayout
    /// Its config.yaml, read once at start.
    package let config: SpoolConfig
    let pseudonymizer: Pseudonymizer
    let store: JobStore
    let parser: RequestParser
    let idempotency: IdempotencyStore
    /// Serialises submits that carry a key (`Idempotency-Key`, `request_id`): look-up, mapping and
    /// inbox write happen as one step, so two concurrent retries cannot both create a job.
    let keyedSubmits = NIOLock()
    /// Rendered status documents of recorded jobs, by the identity of their record file.
    let statusCache = StatusCache()

    /// Opens an existing spool (its pseudonym key, `serve/idempotency/`) and removes temp files a
    /// killed server left in `inbox/`.
    package init(layout: SpoolLayout) throws {
        try SpoolSession.requireExisting(layout)
        self.layout = layout
        self.config = try SpoolConfig.load(layout)
        self.pseudonymizer = try Pseudonymizer.load(layout)
        self.store = JobStore(layout: layout)
        self.parser = RequestParser(defaultRegulation: config.defaultRegulation, languages: config.languages)
        self.idempotency = IdempotencyStore(layout: layout, pseudonymizer: pseudonymizer)
        try idempotency.create()
        ServerDrop.removeStaleTemps(layout: layout)
    }

    // MARK: submit

    /// What a submit did.
    package enum SubmitOutcome: Sendable, Equatable {
        /// A new job: its request is in `inbox/`.
        case created(jobID: String)
        /// The key or `request_id` was seen before: the first job, and its status now.
        case existing(jobID: String, status: String)
    }

    /// Validates a request body like intake does and writes it into `inbox/` under a new job id,
    /// or returns the job an earlier submit with the same `Idempotency-Key` or `request_id` made.
    /// Throws ``Problem`` for a request intake would reject. `signature` is the armored SSHSIG over
    /// `body` the authorizer checked (`X-DSAR-Signature`): it is written beside the request as its
    /// `.sig`, so intake verifies it and records its principal as the signer.
    package func submit(
        _ body: [UInt8], idempotencyKey: String?, instance: String, signature: [UInt8]? = nil
    ) throws -> SubmitOutcome {
        let request: DSARRequest
        do {
            request = try parser.parse(body)
        } catch {
            throw Problem.invalidRequest(error.message, instance: instance)
        }
        if let why = config.unknownIdentifierType(request) {
            throw Problem.invalidRequest(why.message, instance: instance)
        }
        if config.requireSignedRequests && signature == nil {
            // The authorizer demands X-DSAR-Signature on such a spool; this is the last line.
            throw Problem(
                .forbidden, "signature-required", title: "A signed request is required",
                detail:
                    "this spool accepts only signed requests (require_signed_requests: true); send the body's SSHSIG (ssh-keygen -Y sign -n dsar-request) in X-DSAR-Signature",
                instance: instance)
        }
        var keys: [(IdempotencyStore.Kind, String)] = []
        if let k = idempotencyKey { keys.append((.idempotencyKey, k)) }
        if let rid = request.requestID { keys.append((.requestID, rid)) }
        let digest = idempotency.digest(body)
        guard !keys.isEmpty else {
            let jobID = UUIDv7.make()
            try writeRequest(body, jobID: jobID, signature: signature)
            return .created(jobID: jobID)
        }
        return try keyedSubmits.withLock {
            var reuse: String?
            for (kind, key) in keys {
                guard let e = try idempotency.lookup(kind, key) else { continue }
                if kind == .idempotencyKey && e.bodyDigest != digest {
                    throw Problem(
                        .unprocessableContent, "idempotency-key-reused",
                        title: "Idempotency-Key used for another request",
                        detail:
                            "this Idempotency-Key was first used with another body (job \(e.jobID)); use a new key for a new request",
                        instance: instance)
                }
                switch try state(e.jobID) {
                case .record(let r):
                    // The duplicate rule of intake: an ended dry run does not count.
                    if kind == .requestID && r.dryRun && r.status.isTerminal { continue }
                    return .existing(jobID: e.jobID, status: r.status.rawValue)
                case .claimed, .inbox: return .existing(jobID: e.jobID, status: JobStatus.pending.rawValue)
                case .rejected: return .existing(jobID: e.jobID, status: "REJECTED")
                case .unknown:
                    // The mapping was written but the request not (a crash in between): write it now.
                    reuse = reuse ?? e.jobID
                }
            }
            // A request_id first received over SFTP.
            if reuse == nil, let rid = request.requestID, let first = try firstJob(requestID: rid) {
                return .existing(jobID: first.jobID, status: first.status.rawValue)
            }
            let jobID = reuse ?? UUIDv7.make()
            for (kind, key) in keys {
                try idempotency.record(kind, key, .init(jobID: jobID, bodyDigest: digest))
            }
            try writeRequest(body, jobID: jobID, signature: signature)
            return .created(jobID: jobID)
        }
    }

    func writeRequest(_ body: [UInt8], jobID: String, signature: [UInt8]? = nil) throws {
        guard
            try ServerDrop.write(
                body, jobID: jobID, layout: layout, pseudonymizer: pseudonymizer, signature: signature)
        else {
            throw DSARError(.io, "a request for job \(jobID) is already in \(layout.inbox)", path: layout.inbox)
        }
    }

    /// The first job received with this `request_id` that still counts as its job (intake's
    /// duplicate rule: not an ended dry run).
    func firstJob(requestID: String) throws -> JobRecord? {
        try store.all().filter { $0.requestID == requestID }.sorted { $0.jobID < $1.jobID }.first {
            !($0.dryRun && $0.status.isTerminal)
        }
    }

    // MARK: read

    /// Where a job is.
    package enum JobState: Sendable {
        /// Claimed and recorded.
        case record(JobRecord)
        /// Moved into `active/`, its record not yet written (a claim in progress).
        case claimed
        /// Accepted by the server, waiting in `inbox/` for intake.
        case inbox
        /// Refused by intake: the reason it wrote.
        case rejected(String)
        case unknown
    }

    /// Looks a job up where intake moves it: `jobs/`, `inbox/`, `active/`, `jobs/` again (a claim
    /// between two looks is seen by the next), then `rejected/`.
    package func state(_ jobID: String) throws -> JobState {
        guard UUIDv7.isValid(jobID) else { return .unknown }
        if let r = try record(jobID) { return .record(r) }
        let name = ServerDrop.fileName(jobID: jobID, pseudonymizer: pseudonymizer)
        if FileSystem.exists(layout.inbox + "/" + name) { return .inbox }
        if FileSystem.exists(layout.activeRequest(jobID)) {
            if let r = try record(jobID) { return .record(r) }
            return .claimed
        }
        if let r = try record(jobID) { return .record(r) }
        let reasonPath = layout.rejected + "/" + name + ".reason"
        if FileSystem.exists(reasonPath) {
            let text = String(decoding: try FileSystem.readFile(reasonPath, limit: 64 << 10), as: UTF8.self)
            // "<time> <name> (<drop>): <reason>"
            let reason = text.range(of: "): ").map { String(text[$0.upperBound...]) } ?? text
            return .rejected(reason.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return .unknown
    }

    /// The job's record; nil only when there is none (an unreadable record is an error, never "unknown").
    func record(_ jobID: String) throws -> JobRecord? {
        guard FileSystem.exists(layout.jobRecord(jobID)) else { return nil }
        return try store.load(jobID)
    }

    /// `GET /dsar/{jobId}`: the record as `dsar status JOB --json` prints it, or a PENDING/REJECTED
    /// document for a request intake has not claimed; nil for an unknown job.
    package func statusDocument(_ jobID: String) throws -> [UInt8]? {
        guard UUIDv7.isValid(jobID) else { return nil }
        if let doc = try recordDocument(jobID) { return doc }
        switch try state(jobID) {
        case .record(let r): return Array((try JobJSON.record(r) + "\n").utf8)
        case .claimed, .inbox:
            return JSONWriter(indent: 2).encode(
                .object([
                    member("jobId", .string(jobID)), member("status", .string(JobStatus.pending.rawValue)),
                    member("detail", .string("accepted; waiting for dsar run or dsar watch to claim it")),
                ])) + [0x0A]
        case .rejected(let reason):
            return JSONWriter(indent: 2).encode(
                .object([
                    member("jobId", .string(jobID)), member("status", .string("REJECTED")),
                    member("detail", .string(reason)),
                ])) + [0x0A]
        case .unknown: return nil
        }
    }

    /// The status document of a recorded job, from ``statusCache`` while its record file is the one
    /// it was rendered from (one open + fstat), else read from that same descriptor, rendered as
    /// `dsar status JOB --json` prints it and cached; nil when there is no record (yet).
    func recordDocument(_ jobID: String) throws -> [UInt8]? {
        let path = layout.jobRecord(jobID)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw DSARError.syscall("cannot open", path: path)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DSARError.syscall("cannot stat", path: path) }
        let identity = StatusCache.Identity(st)
        if let doc = statusCache.lookup(jobID, identity) { return doc }
        let record: JobRecord
        do {
            let bytes = try FileSystem.readAll(fd: fd, path: path, limit: 16 << 20)
            record = try JSONDecoder().decode(JobRecord.self, from: Data(bytes))
        } catch let e as DSARError {
            throw e
        } catch {
            throw DSARError(.io, "job record \(path) is unreadable: \(error)", path: path, cause: error)
        }
        let doc = Array((try JobJSON.record(record) + "\n").utf8)
        statusCache.store(jobID, identity, doc)
        return doc
    }

    /// `GET /dsar/{jobId}/events`: the job's journal entries; nil for an unknown job.
    package func timeline(_ jobID: String) throws -> [UInt8]? {
        switch try state(jobID) {
        case .unknown: return nil
        case .record:
            return try JobJSON.timeline(jobID: jobID, journal: try Journal(layout: layout, signer: nil))
        default:
            return Array("{\"jobId\":\"\(jobID)\",\"events\":[]}\n".utf8)
        }
    }

    /// `GET /healthz`: nil when the spool and the journal head are readable, else what is not.
    package func healthProblem() -> String? {
        guard layout.exists else { return "the spool \(layout.root) is missing inbox/ or jobs/" }
        for dir in [layout.inbox, layout.jobs] where (try? FileSystem.list(dir)) == nil {
            return "cannot list \(dir)"
        }
        do { _ = try Journal(layout: layout, signer: nil).head() } catch {
            return "the journal head is not readable: \((error as? DSARError)?.message ?? "\(error)")"
        }
        return nil
    }

    /// `GET /metrics`: the metrics textfile's text for the spool now (mode `serve`).
    package func metrics() throws -> String {
        let queued = ((try? FileSystem.list(layout.notify)) ?? []).filter {
            $0.hasSuffix(".json") && !$0.hasPrefix(".")
        }
        return MetricsFile.render(
            layout: layout, records: try store.all(), stats: RunStats(), notificationsPending: queued.count,
            mode: "serve", dueSoonDays: config.dueSoonDays)
    }
}
