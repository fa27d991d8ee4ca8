import DSARCore
import DSARTestSupport
import Foundation
import Logging
import XCTest

final class LogEraserTests: XCTestCase {
    let logger = Logger(label: "test")
    let data = "GET /a user=alice@example.com ok\nGET /b user=bob@example.com ok\nPOST /c from alice%40example.com\r\n"

    func erase(_ rules: String) async throws -> (files: [FileErasure], after: String) {
        let s = try TempSpool()
        let path = s.base + "/app.log"
        try data.write(toFile: path, atomically: true, encoding: .utf8)
        let c = try loadConnector("type: log\npaths: [ app.log ]\nmatch: [ email ]\n" + rules, in: s.base, name: "app")
        let result = try await LogConnector(config: c).erase([eraseJob("alice@example.com")], logger: logger)
        let files = try XCTUnwrap(result["J1"])
        XCTAssertEqual(files.map(\.file), [path])
        XCTAssertEqual(files.map(\.table), [nil])
        return (files, try String(contentsOfFile: path, encoding: .utf8))
    }

    func testRedactReplacesEveryFormOfTheIdentifierAndKeepsTheLines() async throws {
        let (files, after) = try await erase("")
        XCTAssertEqual(after, "GET /a user=[REDACTED] ok\nGET /b user=bob@example.com ok\nPOST /c from [REDACTED]\r\n")
        XCTAssertEqual(files[0].strategy, .redact)
        XCTAssertEqual([files[0].deleted, files[0].redacted, files[0].retained, files[0].remaining], [0, 2, 0, 0])
        XCTAssertNotNil(files[0].sha256After)
        XCTAssertNotEqual(files[0].sha256Before, files[0].sha256After)
    }

    func testDropLineRemovesTheLines() async throws {
        let (files, after) = try await erase("erase: drop_line\nplaceholder: '-'\n")
        XCTAssertEqual(after, "GET /b user=bob@example.com ok\n")
        XCTAssertEqual(files[0].strategy, .dropLine)
        XCTAssertEqual([files[0].deleted, files[0].redacted, files[0].retained, files[0].remaining], [2, 0, 0, 0])
    }

    func testRetainChangesNothingAndSaysWhy() async throws {
        let (files, after) = try await erase("erase: retain\nreason: security audit trail\n")
        XCTAssertEqual(after, data)
        XCTAssertEqual(files[0].strategy, .retain)
        XCTAssertEqual([files[0].deleted, files[0].redacted, files[0].retained, files[0].remaining], [0, 0, 2, 2])
        XCTAssertEqual(files[0].reason, "security audit trail")
    }
}
