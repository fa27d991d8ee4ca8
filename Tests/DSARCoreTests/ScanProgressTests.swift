import Foundation
import Logging
import XCTest

@testable import DSARCore

/// A connector over a real file read by the real `LineReader`, which stops at a given line until
/// the test lets it go on, so the test decides how far the scan has got when it looks.
struct PausingConnector: Connector {
    final class Gate: @unchecked Sendable {
        let reached = DispatchSemaphore(value: 0)
        let resume = DispatchSemaphore(value: 0)
    }
    let name: String
    let path: String
    let pauseAtLine: Int
    let gate: Gate
    var metadata: SourceMetadata { SourceMetadata() }
    func sourceBytes() -> Int64? { ((try? FileSystem.status(path)) ?? nil)?.size }
    func scan(_ batch: ScanBatch, logger: Logger) async throws -> [String: ConnectorFindings] {
        var reader = try LineReader(path: path)
        try reader.forEachLine { _, number, _, _ in
            if number == pauseAtLine {
                gate.reached.signal()
                gate.resume.wait()
            }
        }
        return [:]
    }
}

final class ScanProgressTests: XCTestCase {
    func testShowsBytesScannedOfTotalWhileAConnectorRuns() async throws {
        let dir = NSTemporaryDirectory() + "dsar-progress-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectory(dir, mode: 0o700)
        defer { try? FileSystem.removeTree(dir) }
        // 3 MiB of 1 KiB lines; the reader reads 1 MiB at a time.
        let line = Array(repeating: UInt8(ascii: "x"), count: 1023) + [0x0A]
        var big: [UInt8] = []
        for _ in 0..<(3 * 1024) { big += line }
        try FileSystem.writeAtomically(dir + "/big.log", big)
        let gate = PausingConnector.Gate()
        let connectors: [any Connector] = [
            LogConnector(
                config: ConnectorConfig(
                    name: "logs", file: dir + "/logs.yaml", paths: [dir + "/big.log"], metadata: SourceMetadata(),
                    settings: LogSettings()),
                settings: LogSettings()),
            PausingConnector(name: "pausing", path: dir + "/big.log", pauseAtLine: 1500, gate: gate),
        ]
        let progress = ScanProgress(terminal: false, showAfter: 3600, output: -1)
        let batch = ScanBatch(jobs: [
            ScanJob(
                jobID: "j", action: .export, identifiers: [Identifier(type: "email", value: "a@b.c")], dryRun: true,
                workDir: dir)
        ])
        let scan = Task {
            await progress.track(connectors, round: 1) {
                await ConnectorRunner(concurrency: 2).run(
                    connectors, batch: batch, logger: Logger(label: "t"), progress: progress)
            }
        }
        // Line 1500 lies in the second MiB: two buffers read.
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                gate.reached.wait()
                c.resume()
            }
        }
        var lines: [String] = []
        for _ in 0..<500 {
            lines = progress.lines(now: Date())
            if lines[0].hasPrefix("done") { break }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        XCTAssertTrue(lines[0].hasPrefix("done  logs     3.0 MiB in "), "\(lines)")
        XCTAssertTrue(lines[1].hasPrefix("scan  pausing  2.0 MiB / 3.0 MiB  66%  "), "\(lines)")
        gate.resume.signal()
        let results = await scan.value
        XCTAssertEqual(results.map(\.error), [nil, nil])
        XCTAssertTrue(
            progress.lines(now: Date())[1].hasPrefix("done  pausing  3.0 MiB in "), "\(progress.lines(now: Date()))")
    }

    func testPercentOfTotalFromTheCounter() {
        let progress = ScanProgress(terminal: true, output: -1)
        let c = ProgressCounter()
        c.add(3 << 20)
        progress.state.withLock {
            $0.entries = [
                ScanProgress.Entry(
                    name: "web-logs", total: 12 << 20, counter: c, started: Date().addingTimeInterval(-2))
            ]
        }
        let line = progress.lines(now: Date())[0]
        XCTAssertTrue(line.hasPrefix("scan  web-logs  3.0 MiB / 12.0 MiB  25%  1.5 MiB/s  0:02"), line)
        XCTAssertEqual(ScanProgress.size(999), "999 B")
        XCTAssertEqual(ScanProgress.size(1536), "1.5 KiB")
        XCTAssertEqual(ScanProgress.size(5 << 30), "5.00 GiB")
    }
}
