import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// Crash recovery through the library on a real spool.
final class SpoolRecoveryTests: XCTestCase {
    func claim(_ s: PipelineSpool, _ p: Processor) throws -> String {
        try s.drop("r.json", #"{"user_id": "1042", "action": "export"}"#)
        _ = try p.intake()
        return try XCTUnwrap(try p.intake().claims.first)
    }

    func testARunningJobGoesBackToPendingWithItsCrashCounted() throws {
        let s = try PipelineSpool()
        let p = try s.processor()
        let id = try claim(s, p)
        try p.store.update(id) { $0.status = .running }
        let report = try p.recover()
        XCTAssertEqual(report.requeued, [id])
        let rec = try p.store.load(id)
        XCTAssertEqual(rec.status, .pending)
        XCTAssertEqual(rec.crashes, 1)
        XCTAssertEqual(try s.events().last, "crash.recovered")
        XCTAssertEqual(s.list("active"), ["\(id).json"])
    }

    func testAJobInHandAtMaxCrashesIsSetAsideAsFailed() throws {
        let s = try PipelineSpool(config: "settle_seconds: 0\nmax_crashes: 2\n")
        let p = try s.processor()
        let id = try claim(s, p)
        try p.store.update(id) {
            $0.status = .running
            $0.crashes = 1
        }
        let report = try p.recover()
        XCTAssertEqual(report.setAside, [id])
        XCTAssertEqual(report.requeued, [])
        let rec = try p.store.load(id)
        XCTAssertEqual(rec.status, .failed)
        XCTAssertEqual(rec.crashes, 2)
        XCTAssertTrue(rec.error?.contains("max_crashes: 2") ?? false, rec.error ?? "")
        XCTAssertEqual(Set(s.list("failed")), ["\(id).json", "\(id).reason"])
        XCTAssertEqual(s.list("active"), [])
        XCTAssertEqual(Array(try s.events().suffix(2)), ["crash.recovered", "job.finished"])
        XCTAssertEqual(p.stats.jobsFinished[.failed], 1)
    }

    func testAClaimedRequestWithoutARecordGetsOne() throws {
        let s = try PipelineSpool()
        let p = try s.processor()
        let id = UUIDv7.make()
        try FileSystem.writeAtomically(
            s.layout.activeRequest(id), Array(#"{"request_id": "R-7", "user_id": "2001", "action": "export"}"#.utf8),
            mode: 0o600)
        let report = try p.recover()
        XCTAssertEqual(report.recreated, [id])
        let rec = try p.store.load(id)
        XCTAssertEqual(rec.status, .pending)
        XCTAssertEqual(rec.requestID, "R-7")
        XCTAssertEqual(rec.history.last?.detail, "recovered: claimed before a crash")
        XCTAssertEqual(try s.events(), ["crash.recovered"])
        // The recreated record counts for the duplicate rule.
        try s.drop("again.json", #"{"request_id": "R-7", "user_id": "2001", "action": "export"}"#)
        _ = try p.intake()
        XCTAssertEqual(
            try p.intake().rejected.first?.reason.hasPrefix(
                "duplicate: request_id \"R-7\" was already received as job \(id)"), true)
    }

    func testStaleWorkIsRemoved() throws {
        let s = try PipelineSpool()
        let p = try s.processor()
        try FileSystem.makeDirectory(s.layout.tmp + "/batch", mode: 0o700)
        try FileSystem.writeAtomically(s.layout.tmp + "/batch/capture", [1, 2, 3], mode: 0o600)
        try FileSystem.makeDirectory(s.layout.outbox + "/.0190aaaa-0000-7000-8000-000000000000.partial", mode: 0o700)
        try FileSystem.writeAtomically(s.layout.jobs + "/.x.json.tmp", [1], mode: 0o600)
        let report = try p.recover()
        XCTAssertEqual(report.removedWork, 2)
        XCTAssertEqual(s.spool.allFiles("tmp"), [])
        XCTAssertEqual(s.spool.allFiles("outbox"), [])
        XCTAssertFalse(FileSystem.exists(s.layout.jobs + "/.x.json.tmp"))
        XCTAssertTrue(try p.recover().isEmpty, "a second recovery finds nothing")
    }
}
