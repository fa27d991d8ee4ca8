import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// inotify on `inbox/`: events are only hints that something changed; every wake-up rescans the
/// whole directory, so a lost or overflowed queue (`IN_Q_OVERFLOW`) costs nothing but a rescan.
package final class InboxWatcher {
    private let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    /// Number of queue overflows seen (each answered by a rescan).
    package private(set) var overflows = 0

    /// Starts watching `directory` for files created, written and closed, or moved in.
    package init(directory: String) throws {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0 { throw DSARError.syscall("cannot start inotify", path: directory) }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB | IN_MODIFY)
        if inotify_add_watch(fd, directory, mask) < 0 {
            let e = errno
            close(fd)
            throw DSARError.syscall("cannot watch", path: directory, errno: e)
        }
    }

    deinit { close(fd) }

    /// Waits up to `timeout` seconds for events; returns the names they mention (empty on timeout or
    /// signal). An overflow returns `["*"]`, meaning "rescan everything".
    package func wait(timeout: Double) -> [String] {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ms = Int32(max(0, min(timeout, 3600)) * 1000)
        let r = poll(&p, 1, ms)
        guard r > 0 else { return [] }
        var names: [String] = []
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            var off = 0
            let headerSize = MemoryLayout<inotify_event>.size  // 16 bytes; the name follows
            while off + headerSize <= n {
                let (wd, mask, len) = buffer.withUnsafeBytes { raw -> (Int32, UInt32, UInt32) in
                    let e = raw.loadUnaligned(fromByteOffset: off, as: inotify_event.self)
                    return (e.wd, e.mask, e.len)
                }
                if wd == -1 || mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    overflows += 1
                    names.append("*")
                } else if len > 0 {
                    let start = off + headerSize
                    let end = min(start + Int(len), n)
                    let raw = buffer[start..<end].prefix { $0 != 0 }
                    names.append(String(decoding: raw, as: UTF8.self))
                }
                off += headerSize + Int(len)
            }
        }
        return names
    }
}
