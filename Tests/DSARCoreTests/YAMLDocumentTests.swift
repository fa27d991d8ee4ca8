import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// YAMLMap and its limits (YAMLLimits) on hostile and broken configuration files.
final class YAMLDocumentTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        var template = Array((NSTemporaryDirectory() + "dsar-yaml-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        dir = String(cString: p)
    }

    override func tearDownWithError() throws {
        try FileSystem.removeTree(dir)
    }

    /// The problems thrown by parsing `text` (fails the test when it parses).
    func problems(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [ConfigProblem] {
        do {
            _ = try YAMLMap.parse(text, file: "t.yaml")
            XCTFail("expected configuration problems", file: file, line: line)
            return []
        } catch let e as ConfigProblems {
            return e.problems
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return []
        }
    }

    /// `levels` levels of `&aN [*aN-1 × 9]` over a 9-item list of scalars: 9^(levels+1) nodes expanded.
    static func bomb(levels: Int) -> String {
        var s = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for i in 1...levels {
            s += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 9).joined(separator: ", ") + "]\n"
        }
        return s
    }

    func testAliasAsKeyIsAProblemWithItsLine() {
        let p = problems("base: &k name\n*k : value\nother: 1\n")
        XCTAssertEqual(p.count, 1, "\(p)")
        XCTAssertEqual(p.first?.line, 2)
        XCTAssertTrue(p.first?.message.contains("alias (*k) cannot be a key") ?? false, "\(p)")
    }

    func testNineLevelAliasBombAsKeyFinishesFastWithASmallReport() {
        let yaml =
            Self.bomb(levels: 8) + "? &a9 [" + Array(repeating: "*a8", count: 9).joined(separator: ", ")
            + "]\n: x\n? *a9\n: y\n"
        let start = Date()
        let p = problems(yaml)
        let elapsed = Date().timeIntervalSince(start)
        print("9-level alias bomb rejected in \(elapsed) s")
        XCTAssertLessThan(elapsed, 2)
        let text = ConfigProblems(p).description
        XCTAssertLessThan(text.utf8.count, 10_000, text)
        // The list used as a key (line 10), the alias used as a key (line 12), and the bomb itself.
        XCTAssertTrue(p.contains { $0.line == 10 && $0.message.contains("a key must be text, not a list") }, text)
        XCTAssertTrue(p.contains { $0.line == 12 && $0.message.contains("alias (*a9) cannot be a key") }, text)
        XCTAssertTrue(p.contains { $0.message.contains("too many aliases (alias bomb?)") }, text)
    }

    func testAliasBombAsValueIsRejected() {
        let p = problems(Self.bomb(levels: 6) + "paths: *a6\n")
        XCTAssertEqual(p.count, 1, "\(p)")
        let m = p.first?.message ?? ""
        XCTAssertTrue(m.hasPrefix("too many aliases (alias bomb?)"), m)
        // Reported at the largest alias: *a6 on line 8 stands for 1 + 9 + … + 9^7 nodes.
        XCTAssertEqual(p.first?.line, 8)
        XCTAssertTrue(m.contains("*a6 on line 8"), m)
    }

    func testModestAliasesStillWork() throws {
        let yaml = """
            common: &c [ email, phone ]
            text: *c
            levels:
              a0: &a0 [x, x]
              a1: &a1 [*a0, *a0]
              a2: [*a1, *a1]

            """
        let y = try YAMLMap.parse(yaml, file: "t.yaml")
        XCTAssertEqual(y.strings("text"), ["email", "phone"])
        XCTAssertEqual(y.map("levels")?.keys, ["a0", "a1", "a2"])
        XCTAssertTrue(y.problems.isEmpty, "\(y.problems)")
    }

    func testUndefinedAliasHasItsLine() {
        let p = problems("a: 1\nb: *nowhere\n")
        XCTAssertEqual(p.map(\.line), [2], "\(p)")
        XCTAssertTrue(p.first?.message.contains("*nowhere names no anchor") ?? false, "\(p)")
    }

    func testDuplicateKeysReportTheSecondLineAndTheFirst() {
        let p = problems("name: a\ntype: csv\ntables:\n  users: {}\n  orders: {}\n  users: {}\ntype: log\n")
        XCTAssertEqual(p.count, 2, "\(p)")
        XCTAssertEqual(p[0].line, 6)
        XCTAssertEqual(p[0].key, "users")
        XCTAssertTrue(p[0].message.contains("first at line 4"), p[0].message)
        XCTAssertEqual(p[1].line, 7)
        XCTAssertEqual(p[1].key, "type")
        XCTAssertTrue(p[1].message.contains("first at line 2"), p[1].message)
    }

    func testSecondDocumentIsReportedAtItsLine() {
        let p = problems("---\nname: a\ntype: csv\n---\nname: b\n")
        XCTAssertEqual(p.count, 1, "\(p)")
        XCTAssertEqual(p.first?.line, 4)
        XCTAssertTrue(p.first?.message.contains("second YAML document") ?? false, "\(p)")
        // After `...` (document end) too.
        XCTAssertEqual(problems("name: a\n...\n\nname: b\n").first?.line, 4)
    }

    func testSyntaxErrorHasItsLine() {
        let p = problems("name: a\ntype: [csv\nother: 1\n")
        XCTAssertEqual(p.count, 1, "\(p)")
        XCTAssertTrue(p.first?.message.hasPrefix("YAML syntax error") ?? false, "\(p)")
        XCTAssertGreaterThanOrEqual(p.first?.line ?? 0, 2)
    }

    func testLongAndControlKeysArePrintedShort() throws {
        let long = String(repeating: "k", count: 5000)
        // (libyaml takes a key over 1024 characters only as an explicit `? key`.)
        let y = try YAMLMap.parse("name: a\n? \(long)\n: 1\n\"bad\\nkey\": 2\n", file: "t.yaml")
        y.rejectUnknownKeys(allowed: ["name"])
        XCTAssertEqual(y.problems.count, 2)
        let k0 = y.problems[0].key
        XCTAssertEqual(k0.count, 80)
        XCTAssertTrue(k0.hasSuffix("…"), k0)
        XCTAssertEqual(y.problems[1].key, "bad\\nkey")
        XCTAssertFalse(y.problems[1].description.contains("\n"))
        // Duplicate long keys: the message stays short too.
        let p = problems("? \(long)\n: 1\n? \(long)\n: 2\n")
        XCTAssertLessThan(ConfigProblems(p).description.utf8.count, 300, "\(p)")
    }

    func testSixtyThousandTablesParseInLinearTime() throws {
        /// Parses a connector of `count` tables; returns the seconds it took.
        func parse(_ count: Int) throws -> Double {
            var yaml = "name: big\ntype: sqldump\npaths: [ none-*.sql ]\ntables:\n"
            for i in 0..<count { yaml += "  t\(i): { match: { email: email } }\n" }
            let file = dir + "/big\(count).yaml"
            try FileSystem.writeAtomically(file, Array(yaml.utf8))
            let start = Date()
            let (c, p) = try ConnectorCatalog.parse(
                file: file, checks: .init(knownTypes: ConnectorCatalog.builtinTypes))
            let elapsed = Date().timeIntervalSince(start)
            XCTAssertTrue(p.isEmpty, "\(p.prefix(3))")
            XCTAssertEqual((c?.settings as? SQLDumpSettings)?.tableOrder.count, count)
            XCTAssertEqual((c?.settings as? SQLDumpSettings)?.tableOrder.last, "t\(count - 1)")
            XCTAssertEqual((c?.settings as? SQLDumpSettings)?.tables["t123"]?.match.first?.type, "email")
            return elapsed
        }
        let small = try parse(6_000)
        let big = try parse(60_000)
        print("tables parsed: 6,000 in \(small) s, 60,000 in \(big) s (ratio \(big / small))")
        // Ten times the tables: about ten times the time (the quadratic lookups took a hundred times).
        XCTAssertLessThan(big / small, 30)
        // Generous for a debug build on a loaded 2-core CI (a release build takes about a second).
        XCTAssertLessThan(big, 60)
    }

    func testUnreadableFilesAreOneProblemEach() throws {
        func loadProblems(_ path: String) -> [ConfigProblem] {
            do {
                _ = try YAMLMap.load(file: path)
                XCTFail("\(path) loaded")
                return []
            } catch let e as ConfigProblems {
                return e.problems
            } catch {
                XCTFail("\(path): unexpected error \(error)")
                return []
            }
        }
        try FileManager.default.createDirectory(atPath: dir + "/d.yaml", withIntermediateDirectories: true)
        var p = loadProblems(dir + "/d.yaml")
        XCTAssertEqual(p.count, 1)
        XCTAssertTrue(p.first?.message.contains("is a directory") ?? false, "\(p)")

        XCTAssertEqual(mkfifo(dir + "/f.yaml", 0o644), 0)
        let start = Date()
        p = loadProblems(dir + "/f.yaml")  // never blocks waiting for a writer
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
        XCTAssertTrue(p.first?.message.contains("not a regular file") ?? false, "\(p)")

        try FileSystem.writeAtomically(dir + "/big.yaml", [UInt8](repeating: UInt8(ascii: "#"), count: 5 << 20))
        p = loadProblems(dir + "/big.yaml")
        XCTAssertEqual(p.count, 1)
        XCTAssertTrue(p.first?.message.contains("larger than 4 MiB") ?? false, "\(p)")

        p = loadProblems(dir + "/missing.yaml")
        XCTAssertTrue(p.first?.message.contains("cannot open") ?? false, "\(p)")

        // A NUL byte is an error, never the silent end of the file.
        try FileSystem.writeAtomically(dir + "/nul.yaml", Array("name: a\n".utf8) + [0] + Array("\ntype: csv\n".utf8))
        p = loadProblems(dir + "/nul.yaml")
        XCTAssertEqual(p.count, 1, "\(p)")
        XCTAssertEqual(p.first?.line, 2)
    }

    func testCatalogGoesOnAfterAnUnusableFile() throws {
        try FileManager.default.createDirectory(atPath: dir + "/d.yaml", withIntermediateDirectories: true)
        try FileSystem.writeAtomically(dir + "/data.csv", Array("email\nx@example.invalid\n".utf8))
        try FileSystem.writeAtomically(
            dir + "/good.yaml", Array("name: good\ntype: csv\npaths: [ data.csv ]\ncolumns: { email: email }\n".utf8))
        try FileSystem.writeAtomically(dir + "/bomb.yaml", Array((Self.bomb(levels: 8) + "type: *a8\n").utf8))
        let (configs, problems) = try ConnectorCatalog.loadAll(dir: dir, checks: .init(sources: true))
        XCTAssertEqual(configs.map(\.name), ["good"])
        XCTAssertEqual(problems.count, 2, "\(problems)")
        XCTAssertTrue(
            problems.contains { $0.file.hasSuffix("/d.yaml") && $0.message.contains("is a directory") }, "\(problems)")
        XCTAssertTrue(
            problems.contains { $0.file.hasSuffix("/bomb.yaml") && $0.message.contains("alias bomb") }, "\(problems)")
    }
}
