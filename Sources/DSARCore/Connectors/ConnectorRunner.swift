import Foundation
import Logging

/// Runs every connector once over a whole batch, in parallel with bounded concurrency, each with a
/// timeout and retries with exponential backoff on transient errors.
package struct ConnectorRunner: Sendable {
    package var concurrency: Int
    package var timeoutSeconds: Double
    package var retries: Int
    package var backoffSeconds: Double

    package init(concurrency: Int = 2, timeoutSeconds: Double = 3600, retries: Int = 2, backoffSeconds: Double = 0.5) {
        self.concurrency = max(1, concurrency)
        self.timeoutSeconds = timeoutSeconds
        self.retries = max(0, retries)
        self.backoffSeconds = backoffSeconds
    }

    /// The result of one connector over the batch.
    package struct BatchResult: Sendable {
        package var name: String
        package var metadata: SourceMetadata
        package var findings: [String: ConnectorFindings]
        /// Why the last attempt failed, as thrown (a non-``DSARError`` is wrapped, kept as the cause).
        package var error: DSARError?
        package var attempts: Int
        package var durationMs: Int
    }

    /// Scans with every connector; results come back in the connectors' order.
    package func run(
        _ connectors: [any Connector], batch: ScanBatch, logger: Logger, progress: ScanProgress? = nil
    ) async -> [BatchResult] {
        var results = [BatchResult?](repeating: nil, count: connectors.count)
        // Largest sources first (plugins, of unknown size, before them), so that the last connector
        // to finish is a short one and both cores stay busy.
        let sizes = connectors.map { $0.sourceBytes() ?? Int64.max }
        let order = connectors.indices.sorted { sizes[$0] != sizes[$1] ? sizes[$0] > sizes[$1] : $0 < $1 }
        await withTaskGroup(of: (Int, BatchResult).self) { group in
            var next = 0
            func launch() {
                let k = order[next]
                let c = connectors[k]
                next += 1
                group.addTask {
                    progress?.started(c.name)
                    let r = await ProgressCounter.$current.withValue(progress?.counter(c.name)) {
                        await self.runOne(c, batch: batch, logger: logger)
                    }
                    progress?.finished(c.name, failed: r.error != nil)
                    return (k, r)
                }
            }
            while next < connectors.count && next < concurrency { launch() }
            while let (k, r) = await group.next() {
                results[k] = r
                if next < connectors.count { launch() }
            }
        }
        return results.map { $0! }
    }

    func runOne(_ c: any Connector, batch: ScanBatch, logger: Logger) async -> BatchResult {
        let start = Date()
        var attempt = 0
        var lastError = DSARError(.processing, "not run")
        while true {
            attempt += 1
            do {
                let findings = try await withTimeout(c.timeoutSeconds ?? timeoutSeconds, name: c.name) {
                    try await c.scan(batch, logger: logger)
                }
                return BatchResult(
                    name: c.name, metadata: c.metadata, findings: findings, error: nil, attempts: attempt,
                    durationMs: Int(Date().timeIntervalSince(start) * 1000))
            } catch {
                lastError = (error as? DSARError) ?? DSARError(.processing, "\(error)", cause: error)
                let transient = lastError.code == .io
                logger.warning(
                    "connector failed",
                    metadata: ["connector": "\(c.name)", "attempt": "\(attempt)", "error": "\(lastError.message)"])
                if !transient || attempt > (c.retries ?? retries) || Task.isCancelled { break }
                let delay = backoffSeconds * pow(2, Double(attempt - 1))
                try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            }
        }
        return BatchResult(
            name: c.name, metadata: c.metadata, findings: [:], error: lastError, attempts: attempt,
            durationMs: Int(Date().timeIntervalSince(start) * 1000))
    }
}

/// Runs `body`, failing with a clear error if it takes longer than `seconds` (the body is cancelled).
func withTimeout<T: Sendable>(
    _ seconds: Double, name: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw DSARError(.processing, "connector \(name) timed out after \(Int(seconds)) s")
        }
        return value
    }
}
