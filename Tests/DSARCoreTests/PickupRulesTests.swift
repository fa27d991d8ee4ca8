import DSARCore
import DSARTestSupport
import XCTest

final class PickupRulesTests: XCTestCase {
    func status(_ kind: FileSystem.Status.Kind, size: Int64 = 10) throws -> FileSystem.Status {
        let s = try TempSpool()
        try FileManager.default.createDirectory(atPath: s.base + "/x", withIntermediateDirectories: true)
        let path = s.base + "/f"
        switch kind {
        case .directory: return try FileSystem.lstatus(s.base + "/x")!
        case .symlink:
            try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/etc/passwd")
            return try FileSystem.lstatus(path)!
        default:
            _ = FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x20, count: Int(size)))
            return try FileSystem.lstatus(path)!
        }
    }

    func testNamesAndKinds() throws {
        let reg = try status(.regular)
        XCTAssertEqual(PickupRules.classify(name: "a.json", status: reg, maxBytes: 100), .candidate)
        for n in [".a.json", "a.json.part", "a.json.filepart", "a.json.tmp", "a.txt", "a.json.sig"] {
            XCTAssertEqual(PickupRules.classify(name: n, status: reg, maxBytes: 100), .ignore, n)
        }
        if case .reject(let r) = PickupRules.classify(name: "a.json", status: try status(.symlink), maxBytes: 100) {
            XCTAssertTrue(r.contains("symbolic link"))
        } else {
            XCTFail("symlink not rejected")
        }
        if case .reject(let r) = PickupRules.classify(name: "a.json", status: try status(.directory), maxBytes: 100) {
            XCTAssertTrue(r.contains("directory"))
        } else {
            XCTFail("directory not rejected")
        }
        if case .reject(let r) = PickupRules.classify(
            name: "a.json", status: try status(.regular, size: 101), maxBytes: 100)
        {
            XCTAssertTrue(r.contains("101 bytes"))
        } else {
            XCTFail("oversized not rejected")
        }
    }

    func testSettleNeedsTwoUnchangedLooksApart() throws {
        var t = SettleTracker(settle: 2)
        var st = try status(.regular)
        let t0 = Date()
        XCTAssertFalse(t.observe("a.json", st, now: t0))
        XCTAssertFalse(t.observe("a.json", st, now: t0.addingTimeInterval(1.9)))
        XCTAssertTrue(t.observe("a.json", st, now: t0.addingTimeInterval(2.0)))
        st.size += 1  // the file grew: start over
        XCTAssertFalse(t.observe("a.json", st, now: t0.addingTimeInterval(3)))
        XCTAssertTrue(t.observe("a.json", st, now: t0.addingTimeInterval(5)))
        t.retain([])
        XCTAssertFalse(t.observe("a.json", st, now: t0.addingTimeInterval(6)))
    }
}
