/// One private server for a test class: started (and set up) on first use, its outcome kept so a
/// start that failed is reported to every test of the class without retrying, and stopped by
/// ``release()`` in the class's `tearDown`. A server whose setup fails is stopped before the error
/// is thrown, so none is left running.
package final class ServerSlot<Server>: @unchecked Sendable {
    private var outcome: Result<Server, Error>?
    private let start: () throws -> Server
    private let stop: (Server) -> Void
    private let setUp: (Server) throws -> Void

    /// A slot that starts servers with `start`, prepares them with `setUp`, stops them with `stop`.
    package init(
        start: @escaping () throws -> Server, stop: @escaping (Server) -> Void,
        setUp: @escaping (Server) throws -> Void = { _ in }
    ) {
        self.start = start
        self.stop = stop
        self.setUp = setUp
    }

    /// The server, started and set up on the first call.
    package func get() throws -> Server {
        if outcome == nil {
            outcome = Result {
                let server = try start()
                do { try setUp(server) } catch {
                    stop(server)
                    throw error
                }
                return server
            }
        }
        return try outcome!.get()
    }

    /// Stops the server, if one was started.
    package func release() {
        if case .success(let server)? = outcome { stop(server) }
        outcome = nil
    }
}

extension ServerSlot where Server == PrivatePostgres {
    /// A private PostgreSQL cluster, prepared with `setUp`.
    package convenience init(setUp: @escaping (PrivatePostgres) throws -> Void = { _ in }) {
        self.init(start: { try PrivatePostgres.start() }, stop: { $0.stop() }, setUp: setUp)
    }
}

extension ServerSlot where Server == PrivateMariaDB {
    /// A private MariaDB server, prepared with `setUp`.
    package convenience init(setUp: @escaping (PrivateMariaDB) throws -> Void = { _ in }) {
        self.init(start: { try PrivateMariaDB.start() }, stop: { $0.stop() }, setUp: setUp)
    }
}
