import CShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Durability in phases for many files at once: every file written, then the writeback of all of
/// them started together, then each fsynced (each file is still fsynced on its own, so an error such
/// as a full disk is reported for the file it concerns), then all renamed, then each directory
/// fsynced once. The first fsync's journal commit then carries the others', which find little left to do.
extension FileSystem {
    /// One file of a batch written under a temp name, open until ``commitBatch(_:directory:synced:renamed:)``.
    package struct BatchFile {
        /// The temp sibling written.
        package var temp: String
        /// Its open descriptor.
        package var fd: Int32
        /// Where it is renamed to.
        package var final: String
    }

    /// Phase 1: writes `data` to a temp sibling of `path` (not yet fsynced nor renamed). On error
    /// nothing is left behind.
    package static func writeBatchFile(_ path: String, _ data: [UInt8], mode: mode_t) throws -> BatchFile {
        let temp = try TempFile.create(near: path, mode: mode)
        do {
            try data.withUnsafeBytes { try writeAll(temp.fd, $0, path: temp.path) }
        } catch {
            close(temp.fd)
            unlink(temp.path)
            throw error
        }
        return BatchFile(temp: temp.path, fd: temp.fd, final: path)
    }

    /// Phases 2–4 for files written by ``writeBatchFile(_:_:mode:)``: writeback of all started, each
    /// fsynced (`synced` is called once all are: a crash point), all renamed (`renamed` is called after each, in
    /// order), then `directory` fsynced once. On an error before the renames no file is renamed and
    /// every temp file is removed; every descriptor is closed whatever happens.
    package static func commitBatch(
        _ files: [BatchFile], directory: String, synced: () -> Void, renamed: (Int) -> Void = { _ in }
    ) throws {
        guard !files.isEmpty else { return }
        var closed = false
        var next = 0
        defer {
            if !closed { for f in files { close(f.fd) } }
            // Not renamed (an error, or the crash point of a test): no temp file stays behind.
            for f in files[next...] { unlink(f.temp) }
        }
        for f in files { _ = dsar_start_writeback(f.fd) }
        if let first = fsyncAll(files.map(\.fd)).min(by: { $0.key < $1.key }) {
            throw DSARError.syscall("cannot fsync", path: files[first.key].temp, errno: first.value)
        }
        for f in files { close(f.fd) }
        closed = true
        synced()
        while next < files.count {
            try rename(files[next].temp, to: files[next].final)
            next += 1
            renamed(next - 1)
        }
        try syncDirectory(directory)
    }

    /// Makes the data of every file in `paths` durable: their writeback started together, then each
    /// fsynced. Returns the first failure per file index (an fsync that fails, e.g. a full disk
    /// found only now under delayed allocation, means that file must not be published).
    package static func syncFiles(_ paths: [String]) -> [Int: DSARError] {
        var fds: [Int32] = []
        var failed: [Int: DSARError] = [:]
        for (k, p) in paths.enumerated() {
            let fd = open(p, O_RDONLY | O_CLOEXEC)
            if fd < 0 { failed[k] = DSARError.syscall("cannot open", path: p) }
            fds.append(fd)
        }
        defer { for fd in fds where fd >= 0 { close(fd) } }
        for fd in fds where fd >= 0 { _ = dsar_start_writeback(fd) }
        for (k, err) in fsyncAll(fds) where failed[k] == nil {
            failed[k] = DSARError.syscall("cannot fsync", path: paths[k], errno: err)
        }
        return failed
    }

    /// fsyncs every descriptor (negative ones are skipped), from up to 16 threads at once when there
    /// are many: fsyncs in flight together share the file system's journal commits and the disk's
    /// cache flushes, where one after the other each waits for its own. Returns errno per failed index.
    package static func fsyncAll(_ fds: [Int32]) -> [Int: Int32] {
        let width = fds.count >= 8 ? min(16, fds.count / 4) : 1
        if width == 1 {
            var failed: [Int: Int32] = [:]
            for (k, fd) in fds.enumerated() where fd >= 0 && fsync(fd) != 0 { failed[k] = errno }
            return failed
        }
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var failed: [Int: Int32] = [:]
        }
        let results = Results()
        let done = DispatchGroup()
        for t in 0..<width {
            done.enter()
            let thread = Thread {
                for k in stride(from: t, to: fds.count, by: width) where fds[k] >= 0 && fsync(fds[k]) != 0 {
                    let err = errno
                    results.lock.withLock { results.failed[k] = err }
                }
                done.leave()
            }
            thread.start()
        }
        done.wait()
        return results.failed
    }
}
