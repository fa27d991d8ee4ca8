import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// Hostile and broken YAML through the real binary: alias bombs, huge mappings, duplicate keys,
/// extra documents, and files that are not config files at all. Never a hang, never a flood, always
/// exit 78 with one problem per broken file and the other files still checked.
final class YAMLLimitsE2ETests: XCTestCase {

    /// `levels` levels of `&aN [*aN-1 × 9]` over nine scalars, then the last level used as a key.
    static func keyBomb(levels: Int) -> String {
        var s = "name: bomb\ntype: csv\npaths: [ x.csv ]\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for i in 1..<levels {
            s += "l\(i): &l\(i) [" + Array(repeating: "*l\(i - 1)", count: 9).joined(separator: ", ") + "]\n"
        }
        s += "? &l\(levels) [" + Array(repeating: "*l\(levels - 1)", count: 9).joined(separator: ", ") + "]\n: x\n"
        s += "? *l\(levels)\n: y\n"
        return s
    }

    /// A good connector (with its data) that `connectors check` lists when nothing else is wrong.
    func writeGood(_ dir: String) throws {
        try writeFile(dir + "/data/good.csv", "email\nnobody@example.invalid\n")
        try writeFile(
            dir + "/good.yaml", "name: good\ntype: csv\npaths: [ data/good.csv ]\ncolumns: { email: email }\n")
    }

    func testNineLevelAliasBombFinishesFastWithASmallClearError() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeGood(dir)
        try writeFile(dir + "/bomb.yaml", Self.keyBomb(levels: 9))
        let start = Date()
        let r = try s.dsar(["connectors", "check", "--connectors", dir], timeout: 10)
        let elapsed = Date().timeIntervalSince(start)
        print(
            "connectors check on a 9-level alias bomb: \(elapsed) s, \(r.stdout.utf8.count + r.stderr.utf8.count) bytes of output"
        )
        XCTAssertEqual(r.status, 78, r.stderr)
        XCTAssertLessThan(elapsed, 2)
        XCTAssertLessThan(r.stdout.utf8.count + r.stderr.utf8.count, 10_000)
        XCTAssertTrue(r.stderr.contains("\(dir)/bomb.yaml:13: -: a key must be text, not a list"), r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/bomb.yaml:15: -: an alias (*l9) cannot be a key"), r.stderr)
        XCTAssertTrue(r.stderr.contains("too many aliases (alias bomb?)"), r.stderr)
        XCTAssertFalse(r.stderr.contains("good.yaml"), r.stderr)
    }

    func testSixtyThousandTablesAreParsedInLinearTime() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        var yaml = "name: big\ntype: sqldump\npaths: [ dumps/none-*.sql ]\ntables:\n"
        for i in 0..<60_000 { yaml += "  t\(i): { match: { email: email }, erase: delete }\n" }
        try writeFile(dir + "/big.yaml", yaml)
        // The glob matches nothing: one problem, so the time measured is parsing and checking the
        // 60,000 tables (no dump is read).
        let start = Date()
        let r = try s.dsar(["connectors", "check", "--connectors", dir], timeout: 90)
        let elapsed = Date().timeIntervalSince(start)
        print("connectors check on 60,000 tables: \(elapsed) s")
        XCTAssertEqual(r.status, 78, r.stderr)
        let lines = r.stderr.split(separator: "\n").filter { $0.contains("big.yaml") }
        XCTAssertEqual(lines.count, 1, r.stderr)
        XCTAssertTrue(
            lines.first?.contains("big.yaml:3: paths: no file matches \"dumps/none-*.sql\"") ?? false, r.stderr)
        // Generous for the debug binary on a loaded 2-core CI (before the fix: minutes; a release
        // build on an idle machine: about a second).
        XCTAssertLessThan(elapsed, 60)
    }

    func testDuplicateKeysAndASecondDocumentHaveTheirLines() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeGood(dir)
        try writeFile(
            dir + "/dup.yaml",
            "name: dup\ntype: sqldump\npaths: [ data/d.sql ]\ntables:\n  users: { match: { email: email } }\n  orders: { match: { email: email } }\n  users: { match: { email: email } }\n"
        )
        try writeFile(
            dir + "/docs.yaml",
            "name: docs\ntype: csv\npaths: [ data/good.csv ]\ncolumns: { email: email }\n---\nname: second\n")
        let r = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(r.status, 78, r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/dup.yaml:7: users: duplicate key (first at line 5)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/docs.yaml:5: -: a second YAML document starts here"), r.stderr)
        XCTAssertFalse(r.stderr.contains(":1: "), r.stderr)
    }

    func testDirectoryAndOversizedFilesAreOneProblemEachAndTheRestIsChecked() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeGood(dir)
        try FileManager.default.createDirectory(atPath: dir + "/d.yaml", withIntermediateDirectories: true)
        try FileSystem.writeAtomically(
            dir + "/huge.yaml", Array("name: huge\n".utf8) + [UInt8](repeating: UInt8(ascii: "#"), count: 5 << 20))
        // Checked after d.yaml and huge.yaml (files are read in name order): its problem proves the check went on.
        try writeFile(
            dir + "/typo.yaml",
            "name: typo\ntype: csv\npaths: [ data/good.csv ]\ncolums: { email: email }\ncolumns: { email: email }\n")
        try s.initialize()
        let r = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(r.status, 78, r.stderr)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.filter { $0.contains("/d.yaml") }.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/d.yaml: -: is a directory, not a YAML file"), r.stderr)
        XCTAssertEqual(lines.filter { $0.contains("/huge.yaml") }.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/huge.yaml: -: is larger than 4 MiB"), r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/typo.yaml:4: colums: unknown key"), r.stderr)
        XCTAssertFalse(r.stderr.contains("good.yaml"), r.stderr)
        // dsar run refuses before claiming anything, with the same exit status.
        try s.drop("r.json", #"{"action": "export", "email": "nobody@example.invalid"}"#)
        let run = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(run.status, 78, run.stderr)
        XCTAssertTrue(run.stderr.contains("\(dir)/d.yaml: -: is a directory"), run.stderr)
        XCTAssertEqual(s.list("inbox"), ["r.json"])
    }

    func testOversizedSpoolConfigIsAConfigurationError() throws {
        let s = try TempSpool()
        try s.initialize()
        let config = try FileSystem.readFile(s.root + "/config.yaml")
        try FileSystem.writeAtomically(
            s.root + "/config.yaml", config + [UInt8](repeating: UInt8(ascii: "#"), count: 5 << 20), mode: 0o640)
        try s.drop("r.json", #"{"action": "export", "email": "nobody@example.invalid"}"#)
        let run = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(run.status, 78, run.stderr)
        XCTAssertTrue(run.stderr.contains("\(s.root)/config.yaml: -: is larger than 4 MiB"), run.stderr)
        XCTAssertEqual(s.list("inbox"), ["r.json"])
        let check = try s.dsar(["connectors", "check"])
        XCTAssertEqual(check.status, 78, check.stderr)
    }
}
