import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// dsar refuses to run on a spool whose keys or journal others could tamper with or read.
final class PermissionsE2ETests: XCTestCase {
    func testUnsafeModesAreRefusedNamingThePathAndTheFix() throws {
        let s = try TempSpool()
        try s.initialize()
        try s.drop("r.json", #"{"action": "export", "user_id": "1"}"#)
        for (path, mode, fix) in [
            (s.root + "/journal", 0o770, "chmod go-w"), (s.root + "/keys", 0o722, "chmod go-w"),
            (s.root + "/keys/signing_key", 0o640, "chmod 600"), (s.root + "/keys/pseudonym.key", 0o604, "chmod 600"),
        ] {
            let original = try XCTUnwrap(try FileSystem.lstatus(path)).mode & 0o777
            chmod(path, mode_t(mode))
            let r = try s.dsar(["run", "--settle", "0"])
            XCTAssertEqual(r.status, 77, path)
            XCTAssertTrue(r.stderr.contains(path) && r.stderr.contains(fix), r.stderr)
            XCTAssertEqual(s.list("inbox"), ["r.json"], "nothing is taken while refused")
            chmod(path, mode_t(original))
        }
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"]).status, 0)
        XCTAssertEqual(try s.records().first?.status, .completed)
    }
}
