import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The append-only, tamper-evident audit journal in `spool/journal/`.
///
/// Segments `NNNNNN-YYYY-MM.jsonl` hold one canonical JSON entry per line, each hash-chained to the
/// one before, across segments. Appends use `O_APPEND`, one `write(2)` per line, then `fsync`; a
/// short lock (`journal/.lock`) serialises writers of different processes. `journal/HEAD` records the
/// latest sequence and hash, so a journal truncated behind it is detected. A segment is closed
/// (mode 0400) when the month changes or it grows past `segmentBytes`, and never written again.
package final class Journal: AuditSink, Sendable {
    package let dir: String
    package let segmentBytes: Int64
    /// Serialises this process's journal I/O (``locked(_:)``); guards no state of its own.
    private let mutex = NSLock()
    private let signer: ManifestSigner?

    /// Everything about a journal that changes, behind ``state``.
    private struct State: Sendable {
        var sinceCheckpoint = 0
        var lastCheckpoint = Date()
        var witness: Witness?
    }

    /// The one lock over all mutable state.
    private let state = Mutex(State())

    /// Entries appended since the last checkpoint (by this process).
    package private(set) var sinceCheckpoint: Int {
        get { state.withLock { $0.sinceCheckpoint } }
        set { state.withLock { $0.sinceCheckpoint = newValue } }
    }
    /// When this process last wrote a checkpoint.
    package private(set) var lastCheckpoint: Date {
        get { state.withLock { $0.lastCheckpoint } }
        set { state.withLock { $0.lastCheckpoint = newValue } }
    }
    /// Receives every signed checkpoint (``checkpointAndWitness()``); set once when the spool is opened.
    package var witness: Witness? {
        get { state.withLock { $0.witness } }
        set { state.withLock { $0.witness = newValue } }
    }

    /// The chain head: the last entry's sequence number and hash.
    package struct Head: Sendable, Equatable {
        package var seq: Int
        package var hash: String
        package init(seq: Int, hash: String) {
            self.seq = seq
            self.hash = hash
        }
        package var json: JSONValue { .obj(["seq": .int(seq), "hash": .string(hash)]) }
    }

    /// What start-up recovery found.
    package struct Recovery: Sendable {
        package var tornBytes: Int
        package var tornFile: String?
    }

    /// Opens the journal in `dir` (created 0700). `signer` signs checkpoints.
    package init(dir: String, signer: ManifestSigner?, segmentBytes: Int64 = 64 << 20) throws {
        self.dir = dir
        self.signer = signer
        self.segmentBytes = segmentBytes
        try FileSystem.makeDirectory(dir, mode: 0o700)
    }

    /// The journal of a spool.
    package convenience init(layout: SpoolLayout, signer: ManifestSigner?) throws {
        try self.init(dir: layout.journal, signer: signer)
    }

    // MARK: segments

    /// Segment file names in order.
    package func segments() throws -> [String] {
        try FileSystem.list(dir).filter { $0.hasSuffix(".jsonl") && !$0.hasPrefix(".") && $0.first?.isNumber == true }
    }

    static func segmentName(index: Int, date: Date) -> String {
        String(format: "%06d-", index) + String(Timestamp.formatDay(date).prefix(7)) + ".jsonl"
    }

    /// Runs `body` under the cross-process journal lock.
    func locked<T>(_ body: () throws -> T) throws -> T {
        mutex.lock()
        defer { mutex.unlock() }
        return try FileLock.withExclusive(path: dir + "/.lock", body)
    }

    /// The last complete line of a segment (nil if empty). Reads only the tail of the file, so an
    /// append costs the same however long the segment is.
    func lastLine(_ path: String) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw DSARError.syscall("cannot open", path: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DSARError.syscall("cannot stat", path: path) }
        let size = Int(st.st_size)
        var window = min(size, 64 * 1024)
        while true {
            var data = [UInt8](repeating: 0, count: window)
            let n = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, window, off_t(size - window)) }
            guard n == window else { throw DSARError.syscall("cannot read", path: path) }
            if let line = lastLine(in: data), window == size || line.startIndex > 0 || data.first == 0x0A {
                return line.isEmpty ? nil : Array(line)
            }
            if window == size { return nil }
            window = min(size, window * 4)
        }
    }

    /// The last complete line in `data` (a slice starting after a newline), if `data` holds one.
    private func lastLine(in data: [UInt8]) -> ArraySlice<UInt8>? {
        guard !data.isEmpty else { return [] }
        var end = data.count
        if data[end - 1] == 0x0A { end -= 1 }
        var start = end
        while start > 0 && data[start - 1] != 0x0A { start -= 1 }
        // start == 0 means the line may begin before this window (unless the window is the file).
        return data[start..<end]
    }

    /// The current head (nil for an empty journal).
    package func head() throws -> Head? {
        try locked { try unlockedHead() }
    }

    func unlockedHead() throws -> Head? {
        for name in try segments().reversed() {
            if let line = try lastLine(dir + "/" + name) {
                let e = try JournalEntry.parse(line)
                return Head(seq: e.seq, hash: e.hash)
            }
        }
        return nil
    }

    /// The head as JSON for manifests (`null` for an empty journal).
    package var headJSON: JSONValue { ((try? head()) ?? nil)?.json ?? .null }

    // MARK: recovery

    /// Detects a torn last line (a crash mid-append), moves it aside to `<segment>.torn` (never
    /// dropped), truncates the segment to its last complete line and journals the recovery.
    @discardableResult
    package func recoverTornTail() throws -> Recovery {
        let r: Recovery = try locked { try unlockedMoveTornTail() }
        if r.tornBytes > 0 { try journalRecovery(r) }
        return r
    }

    func journalRecovery(_ r: Recovery) throws {
        _ = try appendEntry(AuditEvent.journalRecovered(tornBytes: r.tornBytes, tornFile: r.tornFile))
    }

    func unlockedMoveTornTail() throws -> Recovery {
        do {
            guard let last = try segments().last else { return Recovery(tornBytes: 0, tornFile: nil) }
            let path = dir + "/" + last
            // The common case costs one pread: an empty segment or one ending in a newline is whole.
            if try Journal.endsCleanly(path) { return Recovery(tornBytes: 0, tornFile: nil) }
            let data = try FileSystem.readFile(path)
            var goodEnd = data.count
            if let lastNL = data.lastIndex(of: 0x0A) { goodEnd = lastNL + 1 } else { goodEnd = 0 }
            // A complete last line that does not parse is damage, not a torn write: leave it to verify.
            guard goodEnd < data.count else { return Recovery(tornBytes: 0, tornFile: nil) }
            let torn = Array(data[goodEnd...])
            let tornPath = path + ".torn"
            let fd = open(tornPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            if fd < 0 { throw DSARError.syscall("cannot create", path: tornPath) }
            defer { close(fd) }
            let marker = Array(
                "# \(Timestamp.format(Date())) torn tail of \(last) at byte \(goodEnd), \(torn.count) bytes:\n".utf8)
            try (marker + torn + [0x0A]).withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: tornPath) }
            if fsync(fd) != 0 { throw DSARError.syscall("cannot fsync", path: tornPath) }
            if truncate(path, off_t(goodEnd)) != 0 { throw DSARError.syscall("cannot truncate", path: path) }
            let sfd = open(path, O_RDONLY | O_CLOEXEC)
            if sfd >= 0 {
                fsync(sfd)
                close(sfd)
            }
            try FileSystem.syncDirectory(dir)
            return Recovery(tornBytes: torn.count, tornFile: (tornPath as NSString).lastPathComponent)
        }
    }

    /// Whether a segment is empty or ends with a newline (no torn tail), from its last byte only.
    static func endsCleanly(_ path: String) throws -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw DSARError.syscall("cannot open", path: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DSARError.syscall("cannot stat", path: path) }
        if st.st_size == 0 { return true }
        var byte: UInt8 = 0
        guard pread(fd, &byte, 1, off_t(st.st_size - 1)) == 1 else {
            throw DSARError.syscall("cannot read", path: path)
        }
        return byte == 0x0A
    }

    // MARK: appending

    /// Appends one event durably (returns after fsync). A torn tail left by a crashed writer is
    /// moved aside first (and journaled), so a new entry is never glued onto a partial line.
    package func append(_ event: AuditEvent) throws {
        _ = try appendEntry(event)
    }

    /// Appends several events as consecutive entries with one write, one fsync and one HEAD update
    /// (a batch's events of one step). A crash leaves a prefix of them, never a gap.
    package func append(contentsOf events: [AuditEvent]) throws {
        guard !events.isEmpty else { return }
        _ = try appendEntries(events, now: Date())
    }

    @discardableResult
    func appendEntry(_ event: AuditEvent, now: Date = Date()) throws -> JournalEntry {
        try appendEntries([event], now: now).last!
    }

    func appendEntries(_ events: [AuditEvent], now: Date) throws -> [JournalEntry] {
        let entries: [JournalEntry] = try locked {
            let torn = try unlockedMoveTornTail()
            if torn.tornBytes > 0 {
                _ = try appendLocked(
                    [AuditEvent.journalRecovered(tornBytes: torn.tornBytes, tornFile: torn.tornFile)], now: now)
            }
            return try appendLocked(events, now: now)
        }
        state.withLock { $0.sinceCheckpoint += entries.count }
        return entries
    }

    func appendLocked(_ events: [AuditEvent], now: Date) throws -> [JournalEntry] {
        do {
            let head = try unlockedHead()
            var names = try segments()
            var segment = names.last
            if let s = segment {
                let st = try FileSystem.lstatus(dir + "/" + s)
                let month = String(Timestamp.formatDay(now).prefix(7))
                if (st?.size ?? 0) >= segmentBytes || !s.contains("-" + month + ".") {
                    // Close it for good and start the next segment; the chain continues.
                    _ = chmod(dir + "/" + s, 0o400)
                    segment = nil
                }
            }
            if segment == nil {
                let index = (names.last.flatMap { Int($0.prefix(6)) } ?? 0) + 1
                segment = Journal.segmentName(index: index, date: now)
                names.append(segment!)
            }
            var entries: [JournalEntry] = []
            var bytes: [UInt8] = []
            var seq = head?.seq ?? 0
            var prev = head?.hash ?? JournalEntry.zeroHash
            for event in events {
                seq += 1
                let e = JournalEntry.make(seq: seq, time: now, event: event, prev: prev)
                prev = e.hash
                entries.append(e)
                bytes += e.line
                bytes.append(0x0A)
            }
            let path = dir + "/" + segment!
            let created = !FileSystem.exists(path)
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
            if fd < 0 { throw DSARError.syscall("cannot open journal segment", path: path) }
            defer { close(fd) }
            // A write that fails part-way (no space left on device) is undone, so the journal never
            // keeps a torn line from a failure that dsar saw and reported.
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw DSARError.syscall("cannot stat", path: path) }
            do {
                try bytes.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: path) }
            } catch {
                _ = ftruncate(fd, st.st_size)
                throw error
            }
            CrashPoint.hit("journal.appended")
            if fsync(fd) != 0 {
                let e = DSARError.syscall("cannot fsync", path: path)
                _ = ftruncate(fd, st.st_size)
                throw e
            }
            if created { try FileSystem.syncDirectory(dir) }
            let last = entries.last!
            // HEAD may lag the journal after a crash (never lead it), so its rename needs no directory fsync.
            try FileSystem.writeAtomically(
                dir + "/HEAD", Array("\(last.seq) \(last.hash)\n".utf8), mode: 0o600, syncDirectory: false)
            return entries
        }
    }

    // MARK: checkpoints

    /// The SSHSIG namespace of checkpoint signatures.
    package static let namespace = "dsar-journal"

    /// The exact message a checkpoint signs for a head.
    package static func checkpointMessage(seq: Int, hash: String) -> [UInt8] {
        Array("dsar-journal checkpoint\nseq: \(seq)\nhash: \(hash)\n".utf8)
    }

    /// Appends a signed checkpoint over the current head, and writes the message and signature as
    /// `checkpoints/<seq>.txt` and `.txt.sig` so an auditor can check them with `ssh-keygen -Y verify`.
    @discardableResult
    package func checkpoint() throws -> Head? {
        guard let signer, let head = try head() else { return nil }
        let message = Journal.checkpointMessage(seq: head.seq, hash: head.hash)
        let sig = try signer.sign(message, namespace: Journal.namespace)
        let cdir = dir + "/checkpoints"
        try FileSystem.makeDirectory(cdir, mode: 0o700)
        let base = cdir + String(format: "/%09d.txt", head.seq)
        // The signature first: a crash in between leaves a lone .sig (still checked against the
        // chain), never a .txt without its signature, which `audit verify` reports as tampering.
        try FileSystem.writeAtomically(base + ".sig", Array(sig.utf8), mode: 0o600)
        try FileSystem.writeAtomically(base, message, mode: 0o600)
        try append(
            AuditEvent.checkpoint(
                signedSeq: head.seq, signedHash: head.hash, namespace: Journal.namespace, principal: signer.principal,
                signature: sig))
        sinceCheckpoint = 0
        lastCheckpoint = Date()
        return head
    }

    /// ``checkpoint()``, then hands every checkpoint the ``witness`` has not accepted yet to it. A
    /// witness failure is logged and journaled (`witness.failed`), never thrown: the checkpoint is
    /// written either way and is sent again at the next checkpoint.
    @discardableResult
    package func checkpointAndWitness() async throws -> Head? {
        let head = try checkpoint()
        if let witness { await witness.deliverPending(self) }
        return head
    }

    /// Every entry (for `dsar events`), with its segment and line.
    package func entries() throws -> [(segment: String, line: Int, entry: JournalEntry)] {
        var out: [(String, Int, JournalEntry)] = []
        for name in try segments() {
            let data = try FileSystem.readFile(dir + "/" + name)
            var n = 0
            for line in data.split(separator: 0x0A, omittingEmptySubsequences: false) where !line.isEmpty {
                n += 1
                if let e = try? JournalEntry.parse(Array(line)) { out.append((name, n, e)) }
            }
        }
        return out
    }
}
