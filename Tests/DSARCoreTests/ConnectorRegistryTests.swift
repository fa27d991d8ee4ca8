import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// Writes `yaml` as `<dir>/<name>.yaml` and parses it with the source checks of `connectors check`.
func parseConnectorYAML(
    _ yaml: String, in dir: String, name: String = "conn"
) throws -> (ConnectorConfig?, [ConfigProblem]) {
    let file = dir + "/" + name + ".yaml"
    try FileSystem.writeAtomically(file, Array(yaml.utf8))
    return try ConnectorCatalog.parse(
        file: file, checks: .init(knownTypes: ConnectorCatalog.builtinTypes, sources: true))
}

/// Like ``parseConnectorYAML(_:in:name:)``, failing the test on any problem.
func loadConnector(_ yaml: String, in dir: String, name: String = "conn") throws -> ConnectorConfig {
    let (c, problems) = try parseConnectorYAML(yaml, in: dir, name: name)
    XCTAssertEqual(problems.map(\.description), [])
    return try XCTUnwrap(c)
}

/// One delete job of a subject known by e-mail.
func eraseJob(_ email: String, id: String = "J1") -> EraseJob {
    EraseJob(jobID: id, identifiers: [Identifier(type: "email", value: email)], dryRun: false)
}

/// Parses `yaml` without the source checks (no connection to a server), failing on any problem.
func parseWithoutSources(_ yaml: String, in dir: String, name: String) throws -> ConnectorConfig? {
    let file = dir + "/" + name + ".yaml"
    try FileSystem.writeAtomically(file, Array(yaml.utf8))
    let (c, problems) = try ConnectorCatalog.parse(file: file, checks: .init(knownTypes: ConnectorCatalog.builtinTypes))
    XCTAssertEqual(problems.map(\.description), [])
    return c
}

final class ConnectorRegistryTests: XCTestCase {
    /// A minimal valid YAML body per kind (`paths` point at `data.*` in the spool's base).
    func minimal(_ type: String) -> String {
        switch type {
        case "csv": "type: csv\npaths: [ data.csv ]\ncolumns: { email: email }\n"
        case "sqldump": "type: sqldump\npaths: [ data.sql ]\ntables:\n  users: { match: { email: email } }\n"
        case "log": "type: log\npaths: [ data.log ]\nmatch: [ email ]\n"
        case "exec": "type: exec\ncommand: [ /bin/true ]\n"
        case "sqlite": "type: sqlite\npath: data.db\ntables:\n  users: { match: { email: email } }\n"
        case "mysql":
            "type: mysql\nconnection: { socket: /nonexistent.sock, database: shop }\ntables:\n  users: { match: { email: email } }\n"
        case "postgres":
            "type: postgres\nconnection: \"host=/nonexistent dbname=shop\"\ntables:\n  users: { match: { email: email } }\n"
        case "spark": "type: spark\ntables:\n  users: { path: data.csv, format: csv, match: { email: email } }\n"
        default: "type: \(type)\n"
        }
    }

    func testEveryKindIsRegisteredOnceAndParsesToItsOwnSettings() throws {
        let names = ConnectorRegistry.names
        XCTAssertEqual(names, ["csv", "sqldump", "log", "exec", "sqlite", "mysql", "postgres", "spark"])
        XCTAssertEqual(Set(names).count, names.count, "a kind is registered twice")
        let s = try TempSpool()
        try "email\na@example.com\n".write(toFile: s.base + "/data.csv", atomically: true, encoding: .utf8)
        try "CREATE TABLE users (email text);\nINSERT INTO users VALUES ('a@example.com');\n".write(
            toFile: s.base + "/data.sql", atomically: true, encoding: .utf8)
        try "a@example.com logged in\n".write(toFile: s.base + "/data.log", atomically: true, encoding: .utf8)
        try "CREATE TABLE users (email text);\n".write(toFile: s.base + "/db.sql", atomically: true, encoding: .utf8)
        XCTAssertEqual(try runTool("sqlite3", [s.base + "/data.db"], stdinPath: s.base + "/db.sql").status, 0)
        for kind in ConnectorRegistry.kinds {
            XCTAssertNotNil(ConnectorRegistry.kind(named: kind.type))
            // A server kind's source check connects, spark's runs Spark: parsed here without it (tested
            // with a real server and real Spark elsewhere).
            let c =
                !["mysql", "postgres", "spark"].contains(kind.type)
                ? try loadConnector(minimal(kind.type), in: s.base, name: kind.type)
                : try XCTUnwrap(try parseWithoutSources(minimal(kind.type), in: s.base, name: kind.type))
            XCTAssertEqual(c.type, kind.type)
            XCTAssertEqual(c.readsFiles, kind.readsFiles)
            XCTAssertTrue(type(of: c.settings).kind == kind, "\(kind.type) parses to the settings of another kind")
            let connector = c.makeConnector()
            XCTAssertEqual(connector.name, kind.type)
            let erasing = try XCTUnwrap(connector as? any ErasingConnector, "\(kind.type) cannot erase")
            XCTAssertFalse(erasing.eraseStrategies.isEmpty)
            // No key is both common and a kind's: one place decides what a common key means.
            XCTAssertEqual(
                Set(kind.keys).intersection(["name", "type", "paths", "follow_symlinks", "max_file_bytes"]), [])
        }
    }

    func testUnknownTypeListsTheRegisteredKinds() throws {
        let s = try TempSpool()
        let (c, problems) = try parseConnectorYAML("type: ndjson\npaths: [ x ]\n", in: s.base)
        XCTAssertNil(c)
        XCTAssertEqual(
            problems.map(\.description),
            [
                "\(s.base)/conn.yaml:1: type: \"ndjson\" is not a connector type; expected one of: csv, sqldump, log, exec, sqlite, mysql, postgres, spark"
            ])
    }

    func testAKindsKeysAreRejectedOnAnotherKind() throws {
        let s = try TempSpool()
        try "email\na@example.com\n".write(toFile: s.base + "/data.csv", atomically: true, encoding: .utf8)
        // `tables:` is sqldump's, `delimiter:` csv's, `command:` exec's, `reopen:` log's.
        let cases: [(yaml: String, key: String, line: Int)] = [
            (minimal("csv") + "tables:\n  users: { match: { email: email } }\n", "tables", 4),
            (minimal("log") + "delimiter: ','\n", "delimiter", 4),
            (minimal("csv") + "command: [ /bin/true ]\n", "command", 4),
            (minimal("exec") + "reopen: 'kill -HUP 1'\n", "reopen", 3),
            (minimal("exec") + "follow_symlinks: true\n", "follow_symlinks", 3),
        ]
        for (yaml, key, line) in cases {
            try "a@example.com\n".write(toFile: s.base + "/data.log", atomically: true, encoding: .utf8)
            let (c, problems) = try parseConnectorYAML(yaml, in: s.base)
            XCTAssertNil(c, yaml)
            let p = try XCTUnwrap(problems.first { $0.key == key }, "\(yaml): \(problems)")
            XCTAssertEqual(p.line, line, yaml)
            XCTAssertTrue(p.message.hasPrefix("unknown key; expected one of: name, type, paths"), p.message)
            XCTAssertEqual(problems.count, 1, "\(problems)")
        }
    }

    func testSettingsOfAnotherKindAreAnErrorNotACrash() throws {
        let s = try TempSpool()
        let c = try loadConnector(minimal("exec"), in: s.base)
        XCTAssertThrowsError(try CSVConnector(config: c)) { e in
            XCTAssertTrue("\(e)".contains("is of type exec, not csv"), "\(e)")
        }
    }
}
