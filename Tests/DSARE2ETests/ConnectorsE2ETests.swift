import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// Connectors through the real binary: identity expansion across connectors, a failing plugin,
/// config errors with file:line.
final class ConnectorsE2ETests: XCTestCase {

    /// accounts.csv knows email → user_id; the event log knows only user_id.
    func makeConnectors(_ s: TempSpool) throws -> String {
        let dir = s.base + "/connectors"
        try writeFile(
            dir + "/data/accounts.csv",
            "email,user_id,name\nalice@example.com,1042,Alice\nmalice@example.com,10420,Mal\n")
        try writeFile(
            dir + "/data/events.jsonl",
            """
            {"user_id": "1042", "event": "login"}
            {"user_id": "10420", "event": "login"}
            {"user_id": 1042, "event": "logout"}
            {"user_id": "21042", "event": "login"}

            """)
        try writeFile(
            dir + "/accounts.yaml",
            """
            name: accounts
            type: csv
            paths: [ data/accounts.csv ]
            category: account
            columns: { email: email, user_id: user_id }

            """)
        try writeFile(
            dir + "/events.yaml",
            """
            name: events
            type: log
            format: jsonl
            paths: [ data/events.jsonl ]
            fields: { user_id: user_id }

            """)
        return dir
    }

    func testIdentityExpansionAcrossConnectors() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try s.initialize()
        try s.drop("r.json", #"{"request_id": "X-1", "action": "export", "email": "Alice@Example.com"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .completed)
        XCTAssertEqual(rec.connectors.first { $0.name == "accounts" }?.records, 1)
        // Found only through the user_id derived from accounts.csv; 10420 and 21042 never match.
        XCTAssertEqual(rec.connectors.first { $0.name == "events" }?.records, 2)
        let derived = try XCTUnwrap(rec.identifiers.first { $0.type == "user_id" })
        XCTAssertEqual(derived.provenance, "user_id derived from accounts.accounts via email")
        // The record holds pseudonyms, never the values.
        let text = s.text("jobs/\(rec.jobID).json")
        XCTAssertFalse(text.contains("1042"))
        XCTAssertFalse(text.lowercased().contains("alice@example.com"))
    }

    func testExpansionCanBeTurnedOff() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try writeFile(
            dir + "/accounts.yaml",
            """
            name: accounts
            type: csv
            paths: [ data/accounts.csv ]
            columns: { email: email, user_id: { type: user_id, expand: false } }

            """)
        try s.initialize()
        try s.drop("r.json", #"{"action": "export", "email": "alice@example.com"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.connectors.first { $0.name == "events" }?.records, 0)
        XCTAssertEqual(rec.identifiers.map(\.type), ["email"])
    }

    func testFailingPluginMakesJobPartialWithReason() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try writeFile(
            dir + "/broken.sh",
            "#!/bin/sh\necho 'connecting to crm' >&2\necho 'crm unreachable: connection refused' >&2\nexit 3\n",
            mode: 0o755)
        try writeFile(dir + "/broken.yaml", "name: crm\ntype: exec\ncommand: [ ./broken.sh ]\n")
        try writeFile(dir + "/slow.sh", "#!/bin/sh\nsleep 30\n", mode: 0o755)
        try writeFile(dir + "/slow.yaml", "name: slow\ntype: exec\ncommand: [ ./slow.sh ]\ntimeout: 1\n")
        try s.initialize()
        try s.drop("r.json", #"{"action": "export", "email": "alice@example.com"}"#)
        let start = Date()
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 1, "a PARTIAL job makes dsar run exit 1")
        XCTAssertLessThan(Date().timeIntervalSince(start), 20, "the slow plugin must be killed at its timeout")
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .partial)
        let crm = try XCTUnwrap(rec.connectors.first { $0.name == "crm" })
        XCTAssertEqual(crm.status, "failed")
        XCTAssertTrue(crm.error?.contains("crm unreachable: connection refused") ?? false, crm.error ?? "")
        XCTAssertTrue(rec.connectors.first { $0.name == "slow" }?.error?.contains("timed out") ?? false)
        XCTAssertEqual(rec.connectors.first { $0.name == "accounts" }?.status, "ok")
        // The request is kept in failed/ with the reason, nothing lost.
        XCTAssertEqual(s.list("failed").sorted(), ["\(rec.jobID).json", "\(rec.jobID).reason"])
    }

    func testAllConnectorsFailingMakesJobFailed() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeFile(dir + "/broken.sh", "#!/bin/sh\necho 'no database' >&2\nexit 1\n", mode: 0o755)
        try writeFile(dir + "/broken.yaml", "name: crm\ntype: exec\ncommand: [ ./broken.sh ]\n")
        try s.initialize()
        try s.drop("r.json", #"{"action": "export", "user_id": "1"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 1)
        XCTAssertEqual(try s.records().first?.status, .failed)
        XCTAssertEqual(s.list("outbox"), [])
    }

    func testConfigErrorsAreReportedWithFileAndLine() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/x.csv", "email\n")
        try writeFile(
            dir + "/bad.yaml",
            """
            name: bad
            type: csv
            paths: [ data/x.csv, data/missing-*.csv ]
            colums: { email: email }
            columns: { email: e-mail }

            """)
        try writeFile(dir + "/worse.yaml", "name: worse\ntype: spreadsheet\npaths: [ x ]\n")
        try s.initialize()
        let r = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(r.status, 78)
        XCTAssertTrue(r.stderr.contains("\(dir)/bad.yaml:3: paths: no file matches \"data/missing-*.csv\""), r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/bad.yaml:4: colums: unknown key"), r.stderr)
        XCTAssertTrue(
            r.stderr.contains("\(dir)/bad.yaml:5: columns.email: \"e-mail\" is not an identifier type"), r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/worse.yaml:2: type: \"spreadsheet\" is not a connector type"), r.stderr)
        // dsar run refuses to start with a broken config, and loses nothing.
        try s.drop("r.json", #"{"action": "export", "user_id": "1"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 78)
        XCTAssertEqual(s.list("inbox"), ["r.json"])
    }

    func testCheckListsSourcesWithSizesAndMissingTable() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try s.initialize()
        let ok = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("accounts  (csv, accounts.yaml)"), ok.stdout)
        let size = try XCTUnwrap(try FileSystem.status(dir + "/data/accounts.csv")).size
        XCTAssertTrue(ok.stdout.contains("\(dir)/data/accounts.csv  \(size) B"), ok.stdout)
        try writeFile(
            dir + "/data/dump.sql",
            "CREATE TABLE customers (id integer, email text);\nINSERT INTO customers VALUES (1, 'a@b.co');\n")
        try writeFile(
            dir + "/db.yaml",
            "name: db\ntype: sqldump\npaths: [ data/dump.sql ]\ntables:\n  customers: { match: { email: email } }\n  invoices: { match: { customer: user_id } }\n"
        )
        let bad = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(bad.status, 78)
        XCTAssertTrue(
            bad.stderr.contains("\(dir)/db.yaml:6: tables.invoices: the dump does not contain table \"invoices\""),
            bad.stderr)
    }

    func testOneBatchReadsEachSourceOnceForAllRequests() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try s.initialize()
        for k in 0..<20 { try s.drop("r\(k).json", #"{"action": "export", "user_id": "\#(1030 + k)"}"#) }
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        let recs = try s.records()
        XCTAssertEqual(recs.count, 20)
        let size = try XCTUnwrap(try FileSystem.status(dir + "/data/events.jsonl")).size
        // One pass for the whole batch: every job reports the same single read of the file, and the
        // jobs share one pass (one duration) — only the one whose identity grew (user 1042 → e-mail
        // from accounts.csv) was searched a second time.
        let events = recs.compactMap { $0.connectors.first { $0.name == "events" } }
        XCTAssertEqual(Set(events.map { $0.details?["bytes_scanned"] ?? "" }), ["\(size)"])
        let durations = Dictionary(grouping: events, by: { $0.durationMs ?? -1 }).mapValues(\.count)
        XCTAssertTrue(durations.values.contains(19) || durations.count == 1, "\(durations)")
        // Matches are routed to their own job: only user 1042 (k = 12) has events.
        XCTAssertEqual(
            recs.map { $0.connectors.first { $0.name == "events" }?.records ?? -1 }.sorted(),
            Array(repeating: 0, count: 19) + [2])
    }

    func testDirectoryAsSourceIsNotReadAndMakesTheJobPartial() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        // A directory where a log file should be: refused at once as not a regular file (not retried:
        // it is not a transient error), a coverage gap naming it.
        try FileManager.default.createDirectory(atPath: dir + "/data/broken.log", withIntermediateDirectories: true)
        try writeFile(dir + "/broken.yaml", "name: broken\ntype: log\npaths: [ data/broken.log ]\nretries: 2\n")
        try s.initialize()
        try s.drop("r.json", #"{"action": "export", "email": "alice@example.com"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 1)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .partial)
        let broken = try XCTUnwrap(rec.connectors.first { $0.name == "broken" })
        XCTAssertEqual(broken.attempts, 1)
        XCTAssertTrue(
            rec.error?.contains("\(dir)/data/broken.log: not read: a directory, not a regular file") ?? false,
            rec.error ?? "")
    }
}
