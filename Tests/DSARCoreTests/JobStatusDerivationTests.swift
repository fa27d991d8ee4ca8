import DSARCore
import XCTest

/// Every branch of the one rule that decides a job's status.
final class JobStatusDerivationTests: XCTestCase {
    func ok(_ name: String, gaps: [CoverageGap] = []) -> ConnectorOutcome {
        var f = ConnectorFindings()
        f.gaps = gaps
        return ConnectorOutcome(name: name, metadata: SourceMetadata(), status: .ok, findings: f)
    }

    func failed(_ name: String, _ why: String) -> ConnectorOutcome {
        ConnectorOutcome(
            name: name, metadata: SourceMetadata(), status: .failed, findings: ConnectorFindings(), error: why)
    }

    func gap(_ n: Int) -> CoverageGap {
        CoverageGap(
            kind: .unmatched, connector: "crm", file: "/data/crm.csv", line: n,
            message: "an identifier outside every record")
    }

    func erasure(
        deleted: Int, errors: [String: String] = [:], remaining: Int = 0, verification: [CoverageGap] = []
    ) -> ErasureOutcome {
        var f = FileErasure(connector: "crm", file: "/data/crm.csv", strategy: .delete)
        f.deleted = deleted
        f.remaining = remaining
        var e = ErasureOutcome(files: [f], errors: errors)
        e.verification = verification
        return e
    }

    func verdict(_ e: JobEvidence) -> JobVerdict { JobStatus.derive(e) }

    func testAllOkIsCompletedWithoutError() {
        XCTAssertEqual(
            verdict(JobEvidence(outcomes: [ok("crm"), ok("logs")])), JobVerdict(status: .completed, error: nil))
    }

    func testSomeFailedIsPartialNamingTheFailedConnectors() {
        XCTAssertEqual(
            verdict(JobEvidence(outcomes: [ok("crm"), failed("logs", "cannot read /var/log/app.log")])),
            JobVerdict(status: .partial, error: "logs: cannot read /var/log/app.log"))
    }

    func testAllFailedIsFailed() {
        XCTAssertEqual(
            verdict(JobEvidence(outcomes: [failed("crm", "x"), failed("logs", "y")])),
            JobVerdict(status: .failed, error: "crm: x; logs: y"))
    }

    func testNoConnectorsIsFailedNeverCompleted() {
        XCTAssertEqual(
            verdict(JobEvidence(outcomes: [])),
            JobVerdict(status: .failed, error: "no connectors are configured: nothing was searched"))
    }

    func testCoverageGapsMakeACompleteSearchPartial() {
        let v = verdict(JobEvidence(outcomes: [ok("crm", gaps: [gap(3), gap(4), gap(5), gap(6)])]))
        XCTAssertEqual(v.status, .partial)
        XCTAssertEqual(
            v.error,
            "not everything could be accounted for (4 gaps): crm: /data/crm.csv:3: an identifier outside every record; crm: /data/crm.csv:4: an identifier outside every record; crm: /data/crm.csv:5: an identifier outside every record; and 1 more (see the manifest's coverage)"
        )
    }

    func testGapsAreAddedToTheErrorOfAFailedConnector() {
        let v = verdict(JobEvidence(outcomes: [ok("crm", gaps: [gap(3)]), failed("logs", "boom")]))
        XCTAssertEqual(
            v,
            JobVerdict(
                status: .partial,
                error: "logs: boom; also (1 gap): crm: /data/crm.csv:3: an identifier outside every record"))
    }

    func testErasureErrorsWithSomethingErasedArePartial() {
        let v = verdict(
            JobEvidence(outcomes: [ok("crm")], erasure: erasure(deleted: 2, errors: ["logs": "read-only file system"])))
        XCTAssertEqual(v, JobVerdict(status: .partial, error: "logs: erasure failed: read-only file system"))
    }

    func testErasureErrorsWithNothingErasedAreFailed() {
        let v = verdict(
            JobEvidence(outcomes: [ok("crm")], erasure: erasure(deleted: 0, errors: ["crm": "cannot rewrite"])))
        XCTAssertEqual(v, JobVerdict(status: .failed, error: "crm: erasure failed: cannot rewrite"))
    }

    func testRecordsRemainingAfterErasureArePartial() {
        let v = verdict(JobEvidence(outcomes: [ok("crm")], erasure: erasure(deleted: 1, remaining: 2)))
        XCTAssertEqual(
            v, JobVerdict(status: .partial, error: "2 records of the subject remain after erasure (see the receipt)"))
    }

    func testVerificationGapsMeanTheErasureCannotBeCertified() {
        let found = CoverageGap(
            kind: .remaining, connector: "crm", file: "/data/crm.csv", line: 9, message: "still there")
        let v = verdict(JobEvidence(outcomes: [ok("crm")], erasure: erasure(deleted: 1, verification: [found])))
        XCTAssertEqual(
            v,
            JobVerdict(
                status: .partial,
                error: "the search after erasure still finds the subject (1 gap): crm: /data/crm.csv:9: still there"))
        let nothingErased = verdict(
            JobEvidence(outcomes: [ok("crm")], erasure: erasure(deleted: 0, verification: [found])))
        XCTAssertEqual(nothingErased.status, .failed)
    }

    func testACleanErasureIsCompleted() {
        XCTAssertEqual(
            verdict(JobEvidence(outcomes: [ok("crm")], erasure: erasure(deleted: 3))),
            JobVerdict(status: .completed, error: nil))
    }

    func testErasureIsNotJudgedWhenTheSearchAlreadyFailed() {
        let v = verdict(JobEvidence(outcomes: [failed("crm", "x")], erasure: erasure(deleted: 1, errors: ["crm": "y"])))
        XCTAssertEqual(v, JobVerdict(status: .failed, error: "crm: x"))
    }

    func testASealFailureIsFailedWhateverTheSearchFound() {
        let v = verdict(JobEvidence(outcomes: [ok("crm")], seal: .failed("No space left on device (/spool/outbox)")))
        XCTAssertEqual(
            v, JobVerdict(status: .failed, error: "publishing failed: No space left on device (/spool/outbox)"))
    }

    func testAJobThatCannotRunIsFailedWithItsReason() {
        let v = verdict(JobEvidence(outcomes: [ok("crm")], unrunnable: "the claimed request no longer parses"))
        XCTAssertEqual(v, JobVerdict(status: .failed, error: "the claimed request no longer parses"))
    }
}
