import DSARCore
import DSARTestSupport
import Foundation
import Logging
import XCTest

final class CSVEraserTests: XCTestCase {
    let logger = Logger(label: "test")
    let data = "id,email,note\r\n1,alice@example.com,hi\r\n2,bob@example.com,\"x, y\"\r\n3,alice@example.com,again\r\n"

    func erase(
        _ rules: String
    ) async throws -> (result: [String: [FileErasure]], after: String, path: String, afterHash: String) {
        let s = try TempSpool()
        let path = s.base + "/users.csv"
        try data.write(toFile: path, atomically: true, encoding: .utf8)
        let c = try loadConnector(
            "type: csv\npaths: [ users.csv ]\ncolumns: { email: email }\n" + rules, in: s.base, name: "users")
        let connector = try CSVConnector(config: c)
        let result = try await connector.erase([eraseJob("alice@example.com")], logger: logger)
        return (result, try String(contentsOfFile: path, encoding: .utf8), path, try AtomicRewrite.hash(path: path))
    }

    func testDeleteDropsTheRowsAndKeepsTheRestByteForByte() async throws {
        let s = try TempSpool()
        try data.write(toFile: s.base + "/copy.csv", atomically: true, encoding: .utf8)
        let beforeHash = try AtomicRewrite.hash(path: s.base + "/copy.csv")
        let (result, after, path, afterHash) = try await erase("erase: delete\n")
        XCTAssertEqual(after, "id,email,note\r\n2,bob@example.com,\"x, y\"\r\n")
        let f = try XCTUnwrap(result["J1"]?.first)
        XCTAssertEqual(result["J1"]?.count, 1)
        XCTAssertEqual(f.strategy, .delete)
        XCTAssertNil(f.table)
        XCTAssertEqual(f.file, path)
        XCTAssertEqual([f.deleted, f.redacted, f.retained, f.remaining], [2, 0, 0, 0])
        XCTAssertEqual(f.sha256Before, beforeHash)
        XCTAssertEqual(f.sha256After, afterHash)
    }

    func testRedactOverwritesOnlyTheListedColumns() async throws {
        let (result, after, _, _) = try await erase("erase: redact\nredact: [ email ]\n")
        XCTAssertEqual(
            after, "id,email,note\r\n1,[REDACTED],hi\r\n2,bob@example.com,\"x, y\"\r\n3,[REDACTED],again\r\n")
        let f = try XCTUnwrap(result["J1"]?.first)
        XCTAssertEqual(f.strategy, .redact)
        XCTAssertEqual([f.deleted, f.redacted, f.retained, f.remaining], [0, 2, 0, 0])
    }

    func testRetainChangesNothingAndSaysWhy() async throws {
        let (result, after, _, _) = try await erase("erase: retain\nreason: invoices are kept 10 years\n")
        XCTAssertEqual(after, data)
        let f = try XCTUnwrap(result["J1"]?.first)
        XCTAssertEqual(f.strategy, .retain)
        XCTAssertEqual([f.deleted, f.redacted, f.retained, f.remaining], [0, 0, 2, 2])
        XCTAssertEqual(f.reason, "invoices are kept 10 years")
        XCTAssertNil(f.sha256After)
    }
}
