import DSARTestSupport
import Foundation
import XCTest

@testable import DSARCore

/// Parsing `type: mysql` connector files (no server needed).
final class MySQLSettingsTests: XCTestCase {
    private func parse(_ yaml: String) throws -> (MySQLSettings?, [String]) {
        let dir = try PrivateServerTools.makeTempDir("dsar-mycfg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/crm-live.yaml"
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        let (c, problems) = try ConnectorCatalog.parse(
            file: file, checks: .init(knownTypes: ConnectorCatalog.builtinTypes))
        let shown = problems.map { $0.description.replacingOccurrences(of: dir + "/", with: "") }
        return (c?.settings as? MySQLSettings, shown)
    }

    func testParsesTheConnectionMapAndMakesTheTarget() throws {
        let (s, problems) = try parse(
            """
            type: mysql
            connection: { host: db.internal, port: 3307, database: crm, user: dsar, option_file: my.cnf, option_group: dsar }
            tables:
              customers: { match: { email: email }, erase: delete }
            """)
        XCTAssertEqual(problems, [])
        let m = try XCTUnwrap(s)
        XCTAssertEqual(m.target, "mysql://db.internal:3307/crm")
        XCTAssertEqual(m.user, "dsar")
        XCTAssertEqual(m.optionGroup, "dsar")
        XCTAssertTrue(m.optionFile?.hasSuffix("/my.cnf") == true && m.optionFile?.hasPrefix("/") == true)
        XCTAssertEqual(m.summary, ["connects to mysql://db.internal:3307/crm"])
        var sock = m
        sock.host = nil
        sock.socket = "/run/mysqld/mysqld.sock"
        XCTAssertEqual(sock.target, "mysql://localhost/crm?socket=/run/mysqld/mysqld.sock")
    }

    func testAnInlinePasswordAndUnknownKeysAreProblems() throws {
        let (_, problems) = try parse(
            """
            type: mysql
            connection:
              host: localhost
              socket: /run/mysqld/mysqld.sock
              database: crm
              password: hunter2
              sslmode: require
              ssl_mode: sometimes
            tables:
              customers: { match: { email: email } }
            """)
        XCTAssertTrue(
            problems.contains {
                $0.hasPrefix("crm-live.yaml:6: connection.password: a password never sits in the YAML")
            }, "\(problems)")
        XCTAssertTrue(
            problems.contains {
                $0.hasSuffix(
                    "connection.sslmode: unknown key; expected one of: host, port, socket, database, user, option_file, option_group, ssl_mode, ssl_ca"
                )
            }, "\(problems)")
        XCTAssertTrue(
            problems.contains { $0.contains("connection.ssl_mode: expected one of: required, verify_identity") },
            "\(problems)")
        XCTAssertTrue(problems.contains { $0.contains("connection.socket: give either host:") }, "\(problems)")
        XCTAssertFalse(problems.joined().contains("hunter2"))
    }

    func testConnectionAndDatabaseAreRequired() throws {
        let (_, p1) = try parse("type: mysql\ntables:\n  t: { match: { email: email } }\n")
        XCTAssertTrue(p1.contains { $0.contains("connection is missing") }, "\(p1)")
        let (_, p2) = try parse("type: mysql\nconnection: { host: h }\ntables:\n  t: { match: { email: email } }\n")
        XCTAssertTrue(p2.contains { $0.contains("connection.database is missing") }, "\(p2)")
    }
}
