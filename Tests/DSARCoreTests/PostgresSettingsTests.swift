import DSARTestSupport
import Foundation
import XCTest

@testable import DSARCore

/// `type: postgres` configuration: the forms of `connection:`, the target it names, and inline
/// passwords refused with a `file:line: key:` problem.
final class PostgresSettingsTests: XCTestCase {
    private func parse(_ connection: String) throws -> (PostgresSettings?, [ConfigProblem]) {
        let dir = try PrivateServerTools.makeTempDir("dsar-pgconf")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/shop-live.yaml"
        try """
        name: shop-live
        type: postgres
        connection: \(connection)
        tables:
          customers: { match: { email: email } }
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let (config, problems) = try ConnectorCatalog.parse(file: file, checks: .init())
        return (config?.settings as? PostgresSettings, problems)
    }

    private func value(_ s: PostgresSettings?, _ key: String) -> String? { s?.conninfo.last { $0.0 == key }?.1 }

    func testConninfoStringURIAndService() throws {
        var (s, p) = try parse("\"host=/var/run/postgresql dbname=shop user=dsar sslmode=require\"")
        XCTAssertEqual(p, [])
        XCTAssertEqual(value(s, "sslmode"), "require")
        XCTAssertEqual(s?.target, "postgres:///var/run/postgresql:5432/shop")
        XCTAssertEqual(s?.name, "shop-live")

        (s, p) = try parse("\"postgresql://dsar@db.internal:6432/shop?sslmode=verify-full\"")
        XCTAssertEqual(p, [])
        XCTAssertEqual(value(s, "user"), "dsar")
        XCTAssertEqual(value(s, "sslmode"), "verify-full")
        XCTAssertEqual(s?.target, "postgres://db.internal:6432/shop")

        (s, p) = try parse("{ service: shop }")
        XCTAssertEqual(p, [])
        XCTAssertEqual(value(s, "service"), "shop")
        XCTAssertEqual(s?.target, "postgres:///?service=shop")

        (s, p) = try parse("\"service: shop\"")
        XCTAssertEqual(p, [])
        XCTAssertEqual(value(s, "service"), "shop")

        (s, p) = try parse("{ host: db.internal, port: 5433, dbname: shop, user: dsar }")
        XCTAssertEqual(p, [])
        XCTAssertEqual(s?.target, "postgres://db.internal:5433/shop")
    }

    func testInlinePasswordsAndBadConninfoAreProblems() throws {
        for c in [
            "\"host=db dbname=shop user=dsar password=hunter2\"", "\"postgres://dsar:hunter2@db/shop\"",
            "{ host: db, password: hunter2 }",
        ] {
            let (s, p) = try parse(c)
            XCTAssertNil(s)
            XCTAssertEqual(p.count, 1, "\(c): \(p)")
            XCTAssertEqual(p.first?.line, 3)
            XCTAssertTrue(p.first?.message.contains("a password never sits in the YAML") ?? false, "\(p)")
            XCTAssertFalse(p.description.contains("hunter2"), "\(p)")
        }
        var (_, p) = try parse("\"host=db dbnme=shop\"")
        XCTAssertEqual(p.map(\.key), ["connection"])
        XCTAssertTrue(p.first?.message.contains("invalid connection option \"dbnme\"") ?? false, "\(p)")
        (_, p) = try parse("{ host: db, dbnme: shop }")
        XCTAssertEqual(p.map(\.key), ["connection.dbnme"])
        XCTAssertTrue(p.first?.message.contains("did you mean dbname?") ?? false, "\(p)")
        (_, p) = try parse("\"postgres://db:notaport/shop\"")
        XCTAssertEqual(p.map(\.key), ["connection"])
    }
}
