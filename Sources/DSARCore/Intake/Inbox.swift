import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Safe reads from and moves out of `inbox/`. Nothing leaves the inbox except by a move with a reason.
public struct Inbox: Sendable {
    public let layout: SpoolLayout

    public init(layout: SpoolLayout) { self.layout = layout }

    /// Current entries with their `lstat` (entries that vanish meanwhile are skipped).
    public func entries() throws -> [(name: String, status: FileSystem.Status)] {
        try FileSystem.list(layout.inbox).compactMap { name in
            guard let st = try FileSystem.lstatus(layout.inbox + "/" + name) else { return nil }
            return (name, st)
        }
    }

    /// Reads a candidate without following links or blocking, checking it is still the file that settled.
    public func read(_ name: String, expected: FileSystem.Status, maxBytes: Int) throws -> [UInt8] {
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
    /// Returns the name it got in `rejected/`.
    @discardableResult
    public func reject(_ name: String, reason: String, now: Date = Date()) throws -> String {
        let text = "\(Timestamp.format(now)) \(name): \(reason)\n"
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
            if try FileSystem.renameNoReplace(layout.inbox + "/" + name, to: targetPath) {
                try FileSystem.syncDirectory(layout.rejected)
                try FileSystem.syncDirectory(layout.inbox)
                return target
            }
            try FileSystem.remove(targetPath + ".reason")
            k += 1
        }
    }
}
