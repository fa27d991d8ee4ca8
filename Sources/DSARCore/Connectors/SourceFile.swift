#if canImport(Glibc)
import Glibc
#endif

/// Opening data sources: regular files only, never blocking in `open(2)`, and reads that stop at
/// the connector's time limit.
///
/// A FIFO blocks `open` until a writer comes, a device such as `/dev/urandom` never ends, a
/// directory cannot be read: none of them is a source. Every reader (CSV, SQL dump, log, gzip, the
/// raw re-read and hash, the erasers) opens through ``open(_:options:)``, which opens with
/// `O_NONBLOCK | O_NOFOLLOW` (symlinks are followed only with `follow_symlinks: true`), checks with
/// `fstat` that it got a regular file (within `max_file_bytes:`), then clears `O_NONBLOCK`.
package enum SourceFile {
    /// How a connector's sources may be opened (`follow_symlinks:`, `max_file_bytes:`).
    package struct Options: Sendable, Equatable {
        /// Whether a symlink is followed to the file it names (`follow_symlinks: true`); the target
        /// must still be a regular file.
        package var followSymlinks: Bool
        /// The largest file accepted (`max_file_bytes:`); nil: any size.
        package var maxBytes: Int64?

        /// Options; the defaults refuse symlinks and accept any size.
        package init(followSymlinks: Bool = false, maxBytes: Int64? = nil) {
            self.followSymlinks = followSymlinks
            self.maxBytes = maxBytes
        }
    }

    /// What a path is, for `connectors check` and the scan.
    package struct Entry: Sendable, Equatable {
        /// The path.
        package var path: String
        /// Its kind as seen without following a symlink (`symlink`), or with following when
        /// the options allow it (the target's kind).
        package var kind: FileSystem.Status.Kind?
        /// Its size (the target's with `follow_symlinks`), 0 for anything but a regular file.
        package var size: Int64
        /// Why it cannot be read as a source (nil: a regular file within the limits).
        package var problem: String?
    }

    /// A human name for a file kind (`FIFO (named pipe)`, `device`…).
    package static func describe(_ kind: FileSystem.Status.Kind?) -> String {
        switch kind {
        case .regular: "regular file"
        case .directory: "directory"
        case .symlink: "symbolic link"
        case .fifo: "FIFO (named pipe)"
        case .socket: "socket"
        case .device: "device"
        case .other, nil: "special file"
        }
    }

    /// Classifies `path` with `lstat` (or `stat` when following symlinks), never opening it.
    package static func inspect(_ path: String, options: Options = Options()) -> Entry {
        var st = stat()
        let rc = options.followSymlinks ? stat(path, &st) : lstat(path, &st)
        if rc != 0 {
            let err = errno
            var e = Entry(path: path, kind: nil, size: 0, problem: "cannot stat it: \(String(cString: strerror(err)))")
            if err == ENOENT, options.followSymlinks, lstat(path, &st) == 0 {
                e.kind = .symlink
                e.problem = "a symbolic link whose target does not exist; fix or remove the link"
            }
            return e
        }
        let status = FileSystem.Status(st)
        let problem = problem(kind: status.kind, size: status.size, options: options)
        return Entry(path: path, kind: status.kind, size: status.kind == .regular ? status.size : 0, problem: problem)
    }

    /// Why a file of `kind` and `size` cannot be a source (nil: it can).
    static func problem(kind: FileSystem.Status.Kind, size: Int64, options: Options) -> String? {
        switch kind {
        case .regular:
            if let max = options.maxBytes, size > max {
                return
                    "it is \(size) bytes, more than max_file_bytes: \(max); raise the limit or narrow the connector's paths"
            }
            return nil
        case .symlink:
            return
                "a symbolic link, not a regular file: dsar does not follow links unless the connector sets `follow_symlinks: true` "
                + "(or point paths: at the file itself)"
        default:
            return
                "a \(describe(kind)), not a regular file: dsar reads only regular files; remove it from the directory "
                + "or narrow the connector's paths: glob so it does not match"
        }
    }

    /// Opens `path` read-only for a source read: never blocks (`O_NONBLOCK`), refuses a symlink
    /// unless `options.followSymlinks`, and anything that `fstat` does not call a regular file
    /// (FIFO, socket, device, directory) or that is larger than `options.maxBytes`. The returned
    /// descriptor is in blocking mode again.
    ///
    /// Throws `DSARError(.invalidInput)` naming the file, its kind and what to do, or a
    /// ``DSARError/syscall(_:path:errno:)`` error when it cannot be opened.
    package static func open(_ path: String, options: Options = Options()) throws -> Int32 {
        // A look first, so that a device or FIFO is never even opened (opening some has effects).
        let entry = inspect(path, options: options)
        if let kind = entry.kind, let problem = entry.problem {
            throw refusal(path, kind: kind, problem)
        }
        let flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (options.followSymlinks ? 0 : O_NOFOLLOW)
        let fd = Glibc.open(path, flags)
        if fd < 0 {
            if errno == ELOOP && !options.followSymlinks {
                throw refusal(path, kind: .symlink, problem(kind: .symlink, size: 0, options: options)!)
            }
            throw DSARError.syscall("cannot open", path: path)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = DSARError.syscall("cannot stat", path: path)
            close(fd)
            throw e
        }
        // What was opened is checked again: the path may have been replaced since the look.
        let status = FileSystem.Status(st)
        if let problem = problem(kind: status.kind, size: status.size, options: options) {
            close(fd)
            throw refusal(path, kind: status.kind, problem)
        }
        let fl = fcntl(fd, F_GETFL)
        if fl >= 0 { _ = fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) }
        return fd
    }

    static func refusal(_ path: String, kind: FileSystem.Status.Kind, _ problem: String) -> DSARError {
        DSARError(.invalidInput, "\(path) is not read: \(problem)", path: path)
    }

    /// Throws when the task reading `path` was cancelled (the connector's `timeout:` passed): read
    /// loops call it once per block, so that a long read never outlives its deadline.
    @inline(__always)
    package static func checkCancelled(_ path: String) throws {
        if Task.isCancelled { throw cancelled(path) }
    }

    static func cancelled(_ path: String) -> DSARError {
        DSARError(.processing, "reading \(path) was stopped: the connector's timeout passed", path: path)
    }

    /// The file a rewrite must replace: `path` itself, or with `followSymlinks` the file its
    /// symlinks lead to (so the link stays and the target is rewritten).
    static func rewriteTarget(_ path: String, options: Options) -> String {
        guard options.followSymlinks, let r = realpath(path, nil) else { return path }
        defer { free(r) }
        return String(cString: r)
    }
}
