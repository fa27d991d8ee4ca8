import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Decompresses a gzip stream on its own thread, a few MiB ahead of the reader, so that inflating
/// and matching use two cores.
///
/// A dedicated `Thread` (not the Swift concurrency pool, whose threads must not block) fills a
/// ring of `slots` buffers of `chunkSize` bytes; ``fill(_:capacity:)`` hands them out in order. An
/// error is delivered after the data before it, like ``GzipReader`` does. Dropping the prefetcher
/// stops the thread and waits for it, so the descriptor can be closed right after.
final class GzipPrefetcher: @unchecked Sendable {
    struct Chunk {
        var buffer: UnsafeMutableRawPointer
        var count = 0
        /// Compressed bytes read from the file once this chunk was complete.
        var compressedSoFar: Int64 = 0
        var failure: GzipReader.Failure?
        var end = false
    }

    private let gzip: GzipReader
    /// The ring (raw storage: the two threads touch different slots, ordered by the semaphores).
    private let chunks: UnsafeMutablePointer<Chunk>
    private let slots: Int
    private let free: DispatchSemaphore
    private let full: DispatchSemaphore
    private let finished = DispatchSemaphore(value: 0)
    private let stopLock = NSLock()
    private var stopRequested = false
    private let chunkSize: Int

    /// The consumer's position: the chunk being read and how far.
    private var current = 0
    private var offset = 0
    private var holding = false
    private var done = false
    /// Compressed bytes behind the data handed out so far.
    private(set) var bytesRead: Int64 = 0

    init(_ gzip: GzipReader, chunkSize: Int = 1 << 20, slots: Int = 2) {
        self.gzip = gzip
        self.chunkSize = chunkSize
        self.slots = slots
        chunks = .allocate(capacity: slots)
        for k in 0..<slots {
            (chunks + k).initialize(to: Chunk(buffer: .allocate(byteCount: chunkSize, alignment: 16)))
        }
        // Created at 0 and raised: libdispatch refuses to free a semaphore below its initial value.
        free = DispatchSemaphore(value: 0)
        for _ in 0..<slots { free.signal() }
        full = DispatchSemaphore(value: 0)
        let t = Thread { [unowned self] in self.produce() }
        t.name = "dsar-gunzip"
        t.start()
    }

    /// Stops the thread and waits for it (idempotent); after this the descriptor may be closed.
    func stop() {
        stopLock.lock()
        let first = !stopRequested
        stopRequested = true
        stopLock.unlock()
        guard first else { return }
        free.signal()  // wake the producer if it waits for a free slot
        finished.wait()
    }

    deinit {
        stop()
        for k in 0..<slots { chunks[k].buffer.deallocate() }
        chunks.deinitialize(count: slots)
        chunks.deallocate()
    }

    private var stopping: Bool {
        stopLock.lock()
        defer { stopLock.unlock() }
        return stopRequested
    }

    private func produce() {
        var k = 0
        defer { finished.signal() }
        while true {
            free.wait()
            if stopping { return }
            var c = chunks[k]
            c.count = 0
            c.failure = nil
            c.end = false
            while c.count < chunkSize {
                do {
                    let n = try gzip.fill(c.buffer + c.count, capacity: chunkSize - c.count)
                    if n == 0 {
                        c.end = true
                        break
                    }
                    c.count += n
                } catch {
                    c.failure = error
                    break
                }
            }
            c.compressedSoFar = gzip.bytesRead
            chunks[k] = c
            full.signal()
            if c.end || c.failure != nil { return }
            k = (k + 1) % slots
        }
    }

    /// Copies at most `capacity` decompressed bytes to `dest`; 0 means the end of the data.
    func fill(_ dest: UnsafeMutableRawPointer, capacity: Int) throws(GzipReader.Failure) -> Int {
        while !done {
            if !holding {
                full.wait()
                holding = true
                offset = 0
            }
            let c = chunks[current]
            if offset < c.count {
                let n = min(capacity, c.count - offset)
                memcpy(dest, c.buffer + offset, n)
                offset += n
                if offset == c.count { bytesRead = c.compressedSoFar }
                return n
            }
            // This chunk is used up: its end or error comes now, after its data.
            bytesRead = c.compressedSoFar
            if let failure = c.failure {
                done = true
                throw failure
            }
            if c.end {
                done = true
                return 0
            }
            holding = false
            current = (current + 1) % slots
            free.signal()
        }
        return 0
    }
}
