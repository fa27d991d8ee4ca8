import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// `dsar connectors check` on a pg_dump cut off in a COPY block (the committed real pg_dump fixture, cut).
final class SQLDumpTruncationE2ETests: XCTestCase {
    func testConnectorsCheckReportsACutDumpWithFileAndLineUnlessAllowed() throws {
        let s = try TempSpool()
        try s.initialize()
        let dir = s.base + "/connectors"
        let full = Array(try Data(contentsOf: URL(fileURLWithPath: repoRoot + "/Tests/Fixtures/sql/pg_default.sql")))
        let text = String(decoding: full, as: UTF8.self)
        let copy = try XCTUnwrap(text.range(of: "COPY public.customers "))
        let copyOffset = text.utf8.distance(from: text.startIndex, to: copy.lowerBound)
        let copyLine = 1 + full[0..<copyOffset].filter { $0 == 0x0A }.count
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        try Data(full[0..<(copyOffset + 300)]).write(to: URL(fileURLWithPath: dir + "/data/shop.sql"))
        let yaml = "name: shop\ntype: sqldump\npaths: [ data/shop.sql ]\ntables:\n  customers: { match: { email: email } }\n"
        try writeFile(dir + "/shop.yaml", yaml)

        let bad = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(bad.status, 78, bad.stdout + bad.stderr)
        XCTAssertTrue(
            bad.stderr.contains(
                "\(dir)/shop.yaml:3: paths: \(dir)/data/shop.sql:\(copyLine): COPY public.customers (line \(copyLine)) has no terminating \\. line"),
            bad.stderr)
        XCTAssertFalse(bad.stderr.contains("@example"), bad.stderr)

        try writeFile(dir + "/shop.yaml", yaml + "allow_truncated: true\n")
        let ok = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(ok.status, 0, ok.stdout + ok.stderr)

        try Data(full).write(to: URL(fileURLWithPath: dir + "/data/shop.sql"))
        try writeFile(dir + "/shop.yaml", yaml)
        let complete = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(complete.status, 0, complete.stdout + complete.stderr)
    }
}
