import NIOPosix

/// Where every piece of file work of the server runs (reads of job records and the journal, the
/// inbox write with its fsyncs, the idempotency records).
///
/// A fixed pool of ``threadCount`` threads of its own, not the event loops and not the Swift
/// cooperative pool: the event loops must never wait for a disk, and the cooperative pool has one
/// thread per core (two here), so a few slow fsyncs there would stall every request. The pool bounds
/// how many disk operations run at once. It has more threads than cores because an fsync waits for
/// the disk, not the CPU: with one thread per core (`NIOThreadPool.singleton`) concurrent submits
/// queue behind each other's fsyncs (bench: about 900 durable submits/s on 2 cores), with 16 they
/// share the file system's journal commits (about 3,000/s). `runIfActive` refuses new work once the
/// pool shuts down.
enum BlockingIO {
    /// Threads of the pool.
    static let threadCount = 16

    /// The pool, started on first use.
    static let pool: NIOThreadPool = {
        let p = NIOThreadPool(numberOfThreads: threadCount)
        p.start()
        return p
    }()

    /// Runs `body` on the blocking-I/O thread pool and returns its result.
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }
}
