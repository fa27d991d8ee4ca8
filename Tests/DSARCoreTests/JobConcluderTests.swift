import DSARTestSupport
import Foundation
import XCTest

@testable import DSARCore

/// Concluding sealed jobs on a real spool: final records, retired requests, journal order.
final class JobConcluderTests: XCTestCase {
    /// Claims one request through intake; returns the processor, the job's record and request.
    func claimed(_ s: PipelineSpool, _ body: String) throws -> (Processor, JobRecord, DSARRequest) {
        let p = try s.processor()
        try s.drop("r.json", body)
        _ = try p.intake()
        let id = try XCTUnwrap(try p.intake().claims.first)
        let request = try RequestParser().parse(try FileSystem.readFile(s.layout.activeRequest(id)))
        return (p, try p.store.load(id), request)
    }

    func outcome(_ name: String, records: Int = 1, error: String? = nil) -> ConnectorOutcome {
        ConnectorOutcome(
            name: name, metadata: SourceMetadata(), status: error == nil ? .ok : .failed,
            findings: ConnectorFindings(records: records), error: error)
    }

    func testASealedJobBecomesCompletedItsRequestIsDeletedAndTheManifestHashIsOfTheBytesPublished() throws {
        let s = try PipelineSpool()
        let (p, rec, request) = try claimed(s, #"{"email": "alice@example.com", "action": "delete", "dry_run": true}"#)
        let w = SealWork(record: rec, request: request, outcomes: [outcome("crm")], derived: [], erasure: nil)
        XCTAssertEqual(w.verdict, JobVerdict(status: .completed, error: nil))
        let signer = try ManifestSigner.load(s.layout, config: p.config)
        let finisher = ErasureReportFinisher(signer: signer, group: nil, strategies: [:], journalHead: { .null })
        let sealed = Sealer.seal(w, finisher: finisher, layout: s.layout, logger: s.logger)
        guard case .sealed(var published) = sealed else { return XCTFail("\(sealed)") }
        // Sealed in a batch, the entry is staged and fsynced; the concluder renames the group into place.
        let staging = try XCTUnwrap(published.staged, "the sealer leaves the rename to the concluder")
        XCTAssertFalse(
            FileSystem.exists(s.layout.outboxEntry(rec.jobID)), "not published before the concluder renames it")
        let records = try p.concluder.conclude([(w, sealed)])
        XCTAssertTrue(FileSystem.exists(s.layout.outboxEntry(rec.jobID)))
        XCTAssertFalse(FileSystem.exists(staging), "the staging directory was renamed")
        published.staged = nil
        XCTAssertEqual(records.map(\.status), [.completed])
        XCTAssertEqual(records[0].outbox, "outbox/\(rec.jobID)")
        XCTAssertEqual(try p.store.load(rec.jobID).status, .completed)
        XCTAssertEqual(s.list("active"), [], "a completed job's request (the only copy of the identifiers) is deleted")
        XCTAssertEqual(s.list("failed"), [])
        // The hash journaled is that of the manifest on disk, computed from the bytes written.
        let onDisk = try FileSystem.readFile(published.path + "/manifest.json")
        var h = StreamingSHA256()
        h.update(onDisk)
        XCTAssertEqual(published.manifestSHA256, h.hexDigest())
        let sealedEvent = try XCTUnwrap(try s.entries("receipt.sealed").first)
        XCTAssertTrue("\(sealedEvent.details)".contains(h.hexDigest()), "\(sealedEvent.details)")
        XCTAssertEqual(
            try s.events(), ["job.claimed", "request.received", "receipt.sealed", "job.published", "job.finished"])
        // Publishing again (a crash after publishing) returns the same entry and hashes the existing manifest.
        XCTAssertEqual(
            try finisher.finish(
                FinishingJob(record: rec, request: request, identifiers: [], outcomes: []), layout: s.layout,
                logger: s.logger), published)
    }

    func testAPartialJobIsRecordedWithItsReasonAndItsRequestKeptInFailed() throws {
        let s = try PipelineSpool()
        let (p, rec, request) = try claimed(s, #"{"user_id": "1042", "action": "export"}"#)
        let w = SealWork(
            record: rec, request: request,
            outcomes: [outcome("crm"), outcome("logs", records: 0, error: "cannot read /var/log/app.log")],
            derived: [(Identifier(type: "email", value: "alice@example.com"), "derived from crm via user_id")],
            erasure: nil)
        let sealed = Sealer.seal(w, finisher: SummaryFinisher(), layout: s.layout, logger: s.logger)
        let records = try p.concluder.conclude([(w, sealed)])
        XCTAssertEqual(records.map(\.status), [.partial])
        let final = try p.store.load(rec.jobID)
        XCTAssertEqual(final.error, "logs: cannot read /var/log/app.log")
        XCTAssertEqual(final.identifiers.map(\.provenance), ["request", "derived from crm via user_id"])
        XCTAssertFalse(s.text("jobs/\(rec.jobID).json").contains("alice@example.com"))
        XCTAssertEqual(Set(s.list("failed")), ["\(rec.jobID).json", "\(rec.jobID).reason"])
        XCTAssertTrue(s.text("failed/\(rec.jobID).reason").contains("logs: cannot read /var/log/app.log"))
        XCTAssertEqual(
            try s.events(), ["job.claimed", "request.received", "job.published", "job.finished"],
            "a summary has no manifest to seal")
        XCTAssertTrue("\(try s.entries("job.finished")[0].details)".contains("PARTIAL"))
    }

    func testAFailedSealIsFailedWithTheScrubbedReasonAndNothingPublished() throws {
        let s = try PipelineSpool()
        let (p, rec, request) = try claimed(s, #"{"user_id": "1042", "action": "export"}"#)
        let w = SealWork(record: rec, request: request, outcomes: [outcome("crm")], derived: [], erasure: nil)
        let records = try p.concluder.conclude([(w, .failed(DSARError(.io, "cannot write the bundle of user 1042")))])
        XCTAssertEqual(records.map(\.status), [.failed])
        XCTAssertEqual(records[0].error, "publishing failed: cannot write the bundle of user <user_id>")
        XCTAssertNil(records[0].outbox)
        XCTAssertEqual(s.list("outbox"), [])
        XCTAssertTrue(s.list("failed").contains("\(rec.jobID).json"))
        XCTAssertEqual(try s.events(), ["job.claimed", "request.received", "job.finished"])
    }

    func testARequeuedJobGoesBackToPendingAndIsNotReturned() throws {
        let s = try PipelineSpool()
        let (p, rec, request) = try claimed(s, #"{"user_id": "1042", "action": "export"}"#)
        let w = SealWork(record: rec, request: request, outcomes: [outcome("crm")], derived: [], erasure: nil)
        XCTAssertEqual(try p.concluder.conclude([(w, .requeue)]).count, 0)
        XCTAssertEqual(try p.store.load(rec.jobID).status, .pending)
        XCTAssertEqual(s.list("active"), ["\(rec.jobID).json"])
        XCTAssertEqual(try s.events(), ["job.claimed", "request.received"])
    }
}
