import CShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Safe reads from and moves out of `inbox/`. Nothing leaves the inbox except by a move with a reason.
package struct Inbox: Sendable {
    package let layout: SpoolLayout

    package init(layout: SpoolLayout) { self.layout = layout }

    /// Current entries with their `lstat` (entries that vanish meanwhile are skipped).
    package func entries() throws -> [(name: String, status: FileSystem.Status)] {
        try FileSystem.list(layout.inbox).compactMap { name in
            guard let st = try FileSystem.lstatus(layout.inbox + "/" + name) else { return nil }
            return (name, st)
        }
    }

    /// Reads a candidate without following links or blocking, checking it is still the file that settled.
    package func read(_ name: String, expected: FileSystem.Status, maxBytes: Int) throws -> [UInt8] {
        let path = layout.inbox + "/" + name
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        if fd < 0 { throw DSARError.syscall("cannot open", path: path) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw DSARError.syscall("cannot stat", path: path) }
        let now = FileSystem.Status(st)
        guard now.kind == .regular, now.inode == expected.inode else {
            throw DSARError(.invalidInput, "\(path) changed while being read", path: path)
        }
        return try FileSystem.readAll(fd: fd, path: path, limit: maxBytes)
    }

    /// Moves an inbox entry to `rejected/` (never overwriting) with a `.reason` file beside it.
    /// The stored name is the drop's own (it may be personal data: `rejected/` is the operator's to
    /// read and delete, never journaled or logged); the reason file also names the drop's
    /// `pseudonym`, which is what the journal and the log show. Returns the name it got in `rejected/`.
    @discardableResult
    package func reject(_ name: String, reason: String, pseudonym: String? = nil, now: Date = Date()) throws -> String {
        let text = "\(Timestamp.format(now)) \(name)\(pseudonym.map { " (\($0))" } ?? ""): \(reason)\n"
        return try moveToRejected(from: Array(name.utf8), as: name, reasonText: text)
    }

    /// Moves the entry with these raw name bytes (not valid UTF-8) to `rejected/<safeName>`.
    @discardableResult
    package func rejectRaw(
        _ raw: [UInt8], as safeName: String, reason: String, escapedName: String, pseudonym: String, now: Date = Date()
    ) throws -> String {
        let text = "\(Timestamp.format(now)) \(escapedName) (\(pseudonym)): \(reason)\n"
        return try moveToRejected(from: raw, as: safeName, reasonText: text)
    }

    func moveToRejected(from raw: [UInt8], as name: String, reasonText text: String) throws -> String {
        let source = Array(layout.inbox.utf8) + [0x2F] + raw
        var k = 0
        while true {
            let target = k == 0 ? name : "\(name).\(k)"
            let targetPath = layout.rejected + "/" + target
            if FileSystem.exists(targetPath) || FileSystem.exists(targetPath + ".reason") {
                k += 1
                continue
            }
            // The reason goes first: a crash between the two steps leaves the drop in the inbox
            // (to be rejected again) rather than a rejected file without a reason.
            try FileSystem.writeAtomically(targetPath + ".reason", Array(text.utf8), mode: 0o640)
            if try Inbox.renameNoReplace(source, to: targetPath) {
                try FileSystem.syncDirectory(layout.rejected)
                try FileSystem.syncDirectory(layout.inbox)
                return target
            }
            try FileSystem.remove(targetPath + ".reason")
            k += 1
        }
    }

    /// `rename(2)` without replacing, from a path given as raw bytes (false: the target exists).
    static func renameNoReplace(_ from: [UInt8], to: String) throws -> Bool {
        let r = (from + [0]).withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { dsar_rename_noreplace($0.baseAddress!, to) }
        }
        if r == 0 { return true }
        let err = errno
        if err == EEXIST { return false }
        if err == EINVAL || err == ENOSYS {
            if FileSystem.exists(to) { return false }
            let r2 = (from + [0]).withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { rename($0.baseAddress!, to) }
            }
            if r2 == 0 { return true }
        }
        throw DSARError(
            .io, "cannot move \(escape(from)) to \(to): \(String(cString: strerror(errno)))", path: to, errno: errno)
    }

    /// Raw names of inbox entries that are not valid UTF-8 (``entries()`` cannot name them).
    package func undecodableNames() throws -> [[UInt8]] {
        guard let d = opendir(layout.inbox) else {
            throw DSARError.syscall("cannot list directory", path: layout.inbox)
        }
        defer { closedir(d) }
        var out: [[UInt8]] = []
        while let e = readdir(d) {
            let raw: [UInt8] = withUnsafeBytes(of: e.pointee.d_name) { buf in
                Array(buf.prefix { $0 != 0 })
            }
            if String(validating: raw, as: UTF8.self) == nil { out.append(raw) }
        }
        return out.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// A name for people: printable ASCII and valid UTF-8 as is, every other byte as `\xNN`.
    package static func escape(_ raw: [UInt8]) -> String {
        var out = ""
        var i = 0
        while i < raw.count {
            // The longest valid UTF-8 sequence starting here (1 to 4 bytes).
            var taken = false
            for len in [1, 2, 3, 4] where i + len <= raw.count {
                let chunk = Array(raw[i..<(i + len)])
                if let s = String(validating: chunk, as: UTF8.self), s.unicodeScalars.count == 1,
                    let u = s.unicodeScalars.first, u.value >= 0x20, u.value != 0x7F, u != "\\"
                {
                    out += s
                    i += len
                    taken = true
                    break
                }
            }
            if !taken {
                out += String(format: "\\x%02x", raw[i])
                i += 1
            }
        }
        return out
    }
}
