#if canImport(Glibc)
import Glibc
#endif

/// An error an operator can act on: what failed, where, and the OS error behind it.
///
/// Modelled on SwiftNIO's `FileSystemError`: a stable ``Code`` for programs, a human
/// message for people, the path involved and the `errno` when the OS said no.
package struct DSARError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Stable classification of the failure; also decides the process exit code.
    package enum Code: String, Sendable, Equatable {
        /// A command-line argument or combination is wrong.
        case usage
        /// A configuration file is wrong.
        case config
        /// A system call on a file or directory failed.
        case io
        /// Another dsar process holds the spool lock.
        case locked
        /// A request or input file is malformed.
        case invalidInput
        /// Something that should exist does not.
        case notFound
        /// A permission or ownership rule is violated.
        case permissions
        /// A connector, bundler or eraser failed.
        case processing
        /// Cryptographic verification failed.
        case verification
    }

    /// What kind of failure this is.
    package var code: Code
    /// One sentence for a person, saying what is wrong and what to do.
    package var message: String
    /// The file or directory involved, if any.
    package var path: String?
    /// The OS error number, if a system call failed.
    package var errno: Int32?
    /// The error this one was made from, if any (a parser's, a lower layer's DSARError, a
    /// ``FileLock/Timeout``): kept for programs and logs; ``message`` already says what it means.
    /// Not part of equality.
    package var cause: (any Error)?

    /// Makes an error; `cause` is the error it wraps, if any.
    package init(_ code: Code, _ message: String, path: String? = nil, errno: Int32? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.errno = errno
        self.cause = cause
    }

    /// Equal when code, message, path and errno are (the ``cause`` is not compared).
    package static func == (a: DSARError, b: DSARError) -> Bool {
        a.code == b.code && a.message == b.message && a.path == b.path && a.errno == b.errno
    }

    /// The chain of causes, innermost last (this error excluded).
    package var causes: [any Error] {
        var out: [any Error] = []
        var next = cause
        while let e = next {
            out.append(e)
            next = (e as? DSARError)?.cause
        }
        return out
    }

    /// An error for a failed system call, reading the current `errno`.
    package static func syscall(_ what: String, path: String?, errno err: Int32 = Glibc.errno) -> DSARError {
        let reason = String(cString: strerror(err))
        if let path {
            return DSARError(.io, "\(what) \(path): \(reason)", path: path, errno: err)
        }
        return DSARError(.io, "\(what): \(reason)", path: nil, errno: err)
    }

    package var description: String { message }
}
