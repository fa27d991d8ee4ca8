import Foundation
import Logging

/// Runs a live database's blocking client calls on a thread of their own, never on Swift's
/// cooperative pool: the awaiting task is suspended on a continuation. On task cancellation (the
/// connector's `timeout`, shutdown) the connection is interrupted (``LiveDatabase/interrupt()``), so
/// a hung server never holds dsar past `timeout`.
enum LiveThread {
    /// The connection of one run, shared with the cancellation handler.
    final class Slot: @unchecked Sendable {
        private let lock = NSLock()
        private var db: (any LiveDatabase)?
        private var cancelled = false

        /// Keeps `db` for ``cancel()``; false when the task was cancelled already.
        func set(_ db: any LiveDatabase) -> Bool {
            lock.lock()
            defer { lock.unlock() }
            self.db = db
            return !cancelled
        }

        /// Interrupts what the connection runs now (from any thread).
        func cancel() {
            lock.lock()
            cancelled = true
            let db = self.db
            lock.unlock()
            db?.interrupt()
        }

        var isCancelled: Bool {
            lock.lock()
            defer { lock.unlock() }
            return cancelled
        }
    }

    /// Connects with `settings` and runs `body` on the connection on a dedicated thread; the
    /// connection is closed afterwards (an open transaction is rolled back by the server).
    static func run<T: Sendable>(
        _ settings: any LiveDriverSettings, connector: String, readOnly: Bool, timeoutSeconds: Double,
        logger: Logger, _ body: @escaping @Sendable (any LiveDatabase) throws -> T
    ) async throws -> T {
        try Task.checkCancellation()
        let slot = Slot()
        let password = try settings.live.password()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
                let thread = Thread {
                    cont.resume(
                        with: Result {
                            let db: any LiveDatabase
                            do {
                                db = try settings.connect(
                                    password: password, timeoutSeconds: timeoutSeconds, readOnly: readOnly,
                                    logger: logger)
                            } catch let e as DSARError {
                                throw DSARError(
                                    e.code,
                                    "connector \(connector): cannot connect to \(settings.target): \(e.message)",
                                    path: e.path, cause: e)
                            }
                            defer { db.close() }
                            guard slot.set(db) else { throw CancellationError() }
                            return try body(db)
                        })
                }
                thread.name = "dsar-live-\(connector)"
                thread.stackSize = 4 << 20
                thread.start()
            }
        } onCancel: {
            slot.cancel()
        }
    }
}
