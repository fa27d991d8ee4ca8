#if canImport(Glibc)
import Glibc
#endif

/// Counts lines lazily: only when a row's line number is asked for, and only over bytes not counted yet.
struct SQLLineCounter: Sendable {
    /// Buffer index up to which newlines have been counted.
    var index = 0
    /// The 1-based line number at `index`.
    var line = 1

    /// The 1-based line number of buffer index `idx`.
    mutating func line(at idx: Int, in b: UnsafeBufferPointer<UInt8>) -> Int {
        if idx >= index {
            line += Self.newlines(b, index, idx)
        } else {
            line -= Self.newlines(b, idx, index)
        }
        index = idx
        return line
    }

    /// Called before `b[0..<k]` is dropped from the buffer.
    mutating func discard(_ k: Int, in b: UnsafeBufferPointer<UInt8>) {
        if index < k { _ = line(at: k, in: b) }
        index -= k
    }

    private static func newlines(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Int {
        var n = 0
        var i = from
        while let nl = SQLScanner.find(SQLByte.lf, b, from: i, to: to) {
            n += 1
            i = nl + 1
        }
        return n
    }
}

/// A sliding window over a file: about 1 MiB is read at a time; bytes before `mark` (less a few bytes
/// of look-behind) are dropped on the next `fill`, so memory stays at one chunk plus the statement
/// being kept. All indices are into `buf`; `base` is the file offset of `buf[0]`.
struct SQLInput {
    static let defaultChunk = 1 << 20
    static let lookbehind = 8

    /// Bytes read per `read(2)`.
    let chunk: Int
    let fd: Int32
    let path: String
    var buf: [UInt8] = []
    var base: Int64 = 0
    /// Current position.
    var pos = 0
    /// Earliest index that must survive the next `fill` (the start of the statement or line being read).
    var mark = 0
    var eof = false
    var bytesRead: Int64 = 0
    /// Where reads are counted for progress (the scan's task-local counter).
    let progress = ProgressCounter.current
    var lines = SQLLineCounter()
    /// When set, a digest of every byte read (the file is read in order from its current position).
    var digest: RunningDigest?

    init(fd: Int32, path: String, chunk: Int = SQLInput.defaultChunk) {
        self.fd = fd
        self.path = path
        self.chunk = max(1, chunk)
    }

    /// Drops what is no longer needed and appends up to one chunk; false at end of file.
    /// `pos` and `mark` are shifted with the data; callers must re-read them.
    mutating func fill() throws -> Bool {
        if eof { return false }
        let keep = max(0, min(mark, pos) - Self.lookbehind)
        if keep > 0 {
            let k = keep
            buf.withUnsafeBufferPointer { lines.discard(k, in: $0) }
            buf.removeSubrange(0..<keep)
            base += Int64(keep)
            pos -= keep
            mark -= keep
            if buf.capacity > 8 * chunk && buf.count < chunk {
                var fresh = [UInt8]()
                fresh.reserveCapacity(chunk * 2)
                fresh.append(contentsOf: buf)
                buf = fresh
            }
        }
        try SourceFile.checkCancelled(path)
        let size = chunk
        let data = try [UInt8](unsafeUninitializedCapacity: size) { raw, count in
            count = 0
            while true {
                let n = read(fd, raw.baseAddress, size)
                if n >= 0 {
                    count = n
                    return
                }
                if errno != EINTR { throw DSARError.syscall("cannot read", path: path) }
            }
        }
        let got = data.count
        if buf.isEmpty {
            buf = data
        } else {
            buf.append(contentsOf: data)
        }
        if got == 0 {
            eof = true
            return false
        }
        bytesRead += Int64(got)
        if digest != nil { data.withUnsafeBytes { digest!.feed($0) } }
        progress?.add(got)
        return true
    }

    /// Makes `buf[pos..<pos+n]` available if the file has that many bytes left; false if not.
    mutating func ensure(_ n: Int) throws -> Bool {
        while pos + n > buf.count {
            if try !fill() { return false }
        }
        return true
    }
}
