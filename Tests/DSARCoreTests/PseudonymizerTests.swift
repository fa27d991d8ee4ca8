import DSARCore
import DSARTestSupport
import XCTest

final class PseudonymizerTests: XCTestCase {
    func testStableKeyedAndPrimaryFirst() throws {
        let a = Pseudonymizer(keyBytes: Array(repeating: 1, count: 32))
        let b = Pseudonymizer(keyBytes: Array(repeating: 2, count: 32))
        let email = Identifier(type: "email", value: "alice@example.com")
        let uid = Identifier(type: "user_id", value: "1042")
        XCTAssertEqual(a.pseudonym(email), a.pseudonym(email))
        XCTAssertNotEqual(a.pseudonym(email), b.pseudonym(email))
        XCTAssertEqual(a.pseudonym(email).count, 64)
        XCTAssertEqual(a.subjectPseudonym([uid, email]), a.pseudonym(email))
        XCTAssertEqual(a.subjectPseudonym([uid]), a.pseudonym(uid))
    }

    func testKeyFileIsCreatedPrivateAndRefusedWhenReadable() throws {
        let s = try TempSpool()
        try s.layout.create()
        let p1 = try Pseudonymizer.load(s.layout)
        let path = Pseudonymizer.keyPath(s.layout)
        XCTAssertEqual(try FileSystem.lstatus(path)!.mode & 0o777, 0o600)
        let id = Identifier(type: "email", value: "x@y.z")
        XCTAssertEqual(try Pseudonymizer.load(s.layout).pseudonym(id), p1.pseudonym(id))
        chmod(path, 0o644)
        XCTAssertThrowsError(try Pseudonymizer.load(s.layout)) { e in
            let e = e as! DSARError
            XCTAssertEqual(e.code, .permissions)
            XCTAssertTrue(e.message.contains("chmod 600 \(path)"), e.message)
        }
    }
}
