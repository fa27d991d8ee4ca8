import DSARTestSupport
import Foundation
import XCTest

@testable import DSARCore

#if canImport(Glibc)
import Glibc
#endif

/// ``SourceFile``: only regular files are opened, and every reader stops at the next block once its
/// task is cancelled (what `timeout:` does), on real files in a temp directory.
final class SourceFileTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        var template = Array((NSTemporaryDirectory() + "dsar-sources-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        dir = String(cString: p)
    }

    override func tearDownWithError() throws {
        try FileSystem.removeTree(dir)
    }

    func refusal(_ path: String, options: SourceFile.Options = SourceFile.Options()) -> String? {
        do {
            let fd = try SourceFile.open(path, options: options)
            close(fd)
            return nil
        } catch let e as DSARError {
            XCTAssertEqual(e.code, .invalidInput, e.message)
            return e.message
        } catch {
            return "\(error)"
        }
    }

    func testOnlyRegularFilesAreOpenedAndNothingBlocks() throws {
        try FileSystem.writeAtomically(dir + "/a.log", Array("x\n".utf8), mode: 0o644)
        XCTAssertEqual(mkfifo(dir + "/p.log", 0o644), 0)
        XCTAssertEqual(symlink(dir + "/a.log", dir + "/link.log"), 0)
        XCTAssertEqual(symlink("/dev/urandom", dir + "/random.log"), 0)
        XCTAssertEqual(symlink(dir + "/nowhere", dir + "/dangling.log"), 0)
        XCTAssertEqual(mkdir(dir + "/d.log", 0o755), 0)

        XCTAssertNil(refusal(dir + "/a.log"))
        XCTAssertEqual(
            refusal(dir + "/p.log")?.contains("\(dir)/p.log is not read: a FIFO (named pipe), not a regular file"), true
        )
        XCTAssertEqual(refusal(dir + "/d.log")?.contains("a directory, not a regular file"), true)
        XCTAssertEqual(refusal(dir + "/link.log")?.contains("a symbolic link, not a regular file"), true)
        XCTAssertEqual(refusal(dir + "/random.log")?.contains("a symbolic link"), true)
        XCTAssertEqual(refusal("/dev/urandom")?.contains("/dev/urandom is not read: a device"), true)

        let follow = SourceFile.Options(followSymlinks: true)
        XCTAssertNil(refusal(dir + "/link.log", options: follow))
        XCTAssertEqual(refusal(dir + "/random.log", options: follow)?.contains("a device, not a regular file"), true)
        XCTAssertEqual(SourceFile.inspect(dir + "/dangling.log", options: follow).kind, .symlink)
        XCTAssertNotNil(SourceFile.inspect(dir + "/dangling.log", options: follow).problem)

        // The descriptor handed out is blocking again.
        let fd = try SourceFile.open(dir + "/a.log")
        defer { close(fd) }
        XCTAssertEqual(fcntl(fd, F_GETFL) & O_NONBLOCK, 0)

        // The size limit.
        XCTAssertNil(refusal(dir + "/a.log", options: SourceFile.Options(maxBytes: 2)))
        XCTAssertEqual(
            refusal(dir + "/a.log", options: SourceFile.Options(maxBytes: 1))?.contains("more than max_file_bytes: 1"),
            true)

        // The kinds each reader refuses, without hanging on the FIFO.
        XCTAssertThrowsError(try CSVReader(path: dir + "/p.log"))
        XCTAssertThrowsError(try LineReader(path: dir + "/p.log"))
        XCTAssertThrowsError(try SQLDumpReader(path: dir + "/p.log"))
        XCTAssertThrowsError(try RawVerifier.hash(dir + "/p.log"))
        XCTAssertThrowsError(try AtomicRewrite.rewrite(dir + "/p.log") { _, _, _ in })
        XCTAssertThrowsError(try AtomicRewrite.rewrite(dir + "/d.log") { _, _, _ in })
    }

    /// 4 MiB of lines (several 1 MiB blocks).
    func bigFile(_ name: String, line: String) throws -> String {
        let path = dir + "/" + name
        var text = ""
        while text.utf8.count < 4 << 20 { text += line }
        try FileSystem.writeAtomically(path, Array(text.utf8), mode: 0o644)
        return path
    }

    /// Runs `body` in a task that cancels itself from its first callback; returns the error thrown
    /// and how many callbacks came.
    func cancelledRead(_ body: @escaping @Sendable (_ onItem: () -> Void) throws -> Void) async -> (String?, Int) {
        let task = Task { () -> (String?, Int) in
            var n = 0
            do {
                try body {
                    n += 1
                    if n == 1 { withUnsafeCurrentTask { $0?.cancel() } }
                }
                return (nil, n)
            } catch {
                return ("\(error)", n)
            }
        }
        return await task.value
    }

    func testEveryReaderStopsAtTheNextBlockOnceCancelled() async throws {
        let log = try bigFile("big.log", line: "2026-01-01 some log line of moderate length here\n")
        let lines = 4 << 20 / 49
        let (logError, logLines) = await cancelledRead { item in
            var r = try LineReader(path: log)
            try r.forEachLine { _, _, _, _ in item() }
        }
        XCTAssertEqual(
            logError?.contains("reading \(log) was stopped: the connector's timeout passed"), true,
            logError ?? "no error")
        XCTAssertLessThan(logLines, lines / 2)

        let gz = log + ".1.gz"
        let g = try runCommand("/bin/sh", ["-c", "gzip -c '\(log)' > '\(gz)'"])
        XCTAssertEqual(g.status, 0, g.stderr)
        let (gzError, gzLines) = await cancelledRead { item in
            var r = try LineReader(path: gz)
            XCTAssertTrue(r.isGzip)
            try r.forEachLine { _, _, _, _ in item() }
        }
        XCTAssertEqual(gzError?.contains("was stopped"), true, gzError ?? "no error")
        XCTAssertLessThan(gzLines, lines / 2)

        let csv = try bigFile("big.csv", line: "someone@example.org,a note that is long enough\n")
        let (csvError, rows) = await cancelledRead { item in
            var r = try CSVReader(path: csv, hasHeader: false)
            try r.forEachRecord({ _ in item() }, onProblem: { _ in })
        }
        XCTAssertEqual(csvError?.contains("reading \(csv) was stopped"), true, csvError ?? "no error")
        XCTAssertLessThan(rows, lines / 2)

        let sql = try bigFile("big.sql", line: "INSERT INTO t (a, b) VALUES (1, 'someone@example.org');\n")
        let (sqlError, sqlRows) = await cancelledRead { item in
            var r = try SQLDumpReader(path: sql, dialect: .postgres)
            try r.forEachRow { _ in item() }
        }
        XCTAssertEqual(sqlError?.contains("reading \(sql) was stopped"), true, sqlError ?? "no error")
        XCTAssertLessThan(sqlRows, lines / 2)

        // The hash of the raw bytes is a plain loop: cancelled before it starts, it reads nothing.
        let hashError = await Task { () -> String? in
            withUnsafeCurrentTask { $0?.cancel() }
            do {
                _ = try RawVerifier.hash(log)
                return nil
            } catch { return "\(error)" }
        }.value
        XCTAssertEqual(hashError?.contains("was stopped"), true, hashError ?? "no error")
        // Not cancelled, the same reads complete.
        XCTAssertEqual(try RawVerifier.hash(log).bytes, Int64(try FileSystem.status(log)!.size))
    }
}
