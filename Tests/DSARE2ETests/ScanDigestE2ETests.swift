import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// The coverage a real `dsar run` signs for each structured source (its size and SHA-256 as
/// stored), now taken from the scan's own read, equals `stat` and `sha256sum` of the file: CSV
/// (with a BOM, without a final line break), JSON lines plain and gzip, a pg_dump COPY dump.
final class ScanDigestE2ETests: XCTestCase {
    func sha256sum(_ path: String) throws -> String {
        let r = try runCommand(try XCTUnwrap(which("sha256sum")), [path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return String(r.stdout.prefix(64))
    }

    func testCoverageHashesEqualTheFilesAsStored() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        // Rows past the first 1 MiB read block, so that the digest spans several reads.
        var csv = "\u{FEFF}email,user_id,note\n"
        var jsonl = ""
        var copy = ""
        for k in 0..<25_000 {
            csv += "u\(k)@example.net,\(100_000 + k),\"n \(String(repeating: "z", count: k % 61))\"\n"
            jsonl += "{\"user_id\":\"\(100_000 + k)\",\"event\":\"e\(k % 7)\"}\n"
            copy += "\(k)\tu\(k)@example.net\n"
        }
        csv += "alice@example.com,1042,last row without a line break"
        jsonl += "{\"user_id\":\"1042\",\"event\":\"login\"}\n"
        try writeFile(dir + "/data/acc.csv", csv)
        try writeFile(
            dir + "/acc.yaml",
            "name: acc\ntype: csv\npaths: [ data/acc.csv ]\ncolumns: { email: email, user_id: user_id }\n")
        try writeFile(dir + "/data/ev.jsonl", jsonl)
        try writeFile(dir + "/data/old.jsonl", jsonl)
        let gz = try runCommand(try XCTUnwrap(which("gzip")), ["-n", dir + "/data/old.jsonl"])
        XCTAssertEqual(gz.status, 0, gz.stderr)
        try writeFile(
            dir + "/ev.yaml",
            "name: ev\ntype: log\nformat: jsonl\npaths: [ data/ev.jsonl, data/old.jsonl.gz ]\nfields: { user_id: user_id }\n"
        )
        try writeFile(
            dir + "/data/db.sql",
            "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE public.c (id integer, email text);\n\n"
                + "COPY public.c (id, email) FROM stdin;\n" + copy + "9\talice@example.com\n\\.\n\n"
                + "--\n-- PostgreSQL database dump complete\n--\n\n")
        try writeFile(
            dir + "/db.yaml",
            "name: db\ntype: sqldump\npaths: [ data/db.sql ]\ntables:\n  c: { match: { email: email } }\n")
        try s.initialize()
        try s.drop("r.json", #"{"action": "export", "email": "alice@example.com"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let data = try Data(contentsOf: URL(fileURLWithPath: s.root + "/outbox/\(rec.jobID)/manifest.json"))
        let m = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var seen: [String] = []
        for c in try XCTUnwrap(m["connectors"] as? [[String: Any]]) {
            for src in (c["sources"] as? [[String: Any]]) ?? [] {
                let file = try XCTUnwrap(src["file"] as? String)
                guard file.hasPrefix(dir + "/data/") else { continue }
                seen.append((file as NSString).lastPathComponent)
                let size = try XCTUnwrap(try FileSystem.status(file)).size
                XCTAssertEqual((src["bytes"] as? NSNumber)?.int64Value, Int64(size), file)
                XCTAssertEqual(src["sha256"] as? String, try sha256sum(file), file)
            }
        }
        XCTAssertEqual(Set(seen), ["acc.csv", "ev.jsonl", "old.jsonl.gz", "db.sql"])
        // She was found in each source (the CSV row without a line break too).
        for name in ["acc", "ev", "db"] {
            XCTAssertGreaterThan(rec.connectors.first { $0.name == name }?.records ?? 0, 0, name)
        }
    }
}
