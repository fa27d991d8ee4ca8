import NIOPosix

/// Where every piece of file work of the server runs (reads of job records and the journal, the
/// inbox write with its fsyncs, the idempotency records).
///
/// `NIOThreadPool.singleton`, not the event loops and not the Swift cooperative pool: the event
/// loops must never wait for a disk, and the cooperative pool has one thread per core (two here),
/// so a few slow fsyncs there would stall every request. The NIO thread pool is a fixed set of
/// threads meant for blocking calls (Hummingbird's own file I/O uses it), which also bounds how
/// many disk operations run at once. `runIfActive` refuses new work once the pool shuts down.
enum BlockingIO {
    /// Runs `body` on the blocking-I/O thread pool and returns its result.
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}
