import DSARCore
import XCTest

final class BatchPlanTests: XCTestCase {
    let export = BatchPlan.Job(action: .export, dryRun: false)
    let delete = BatchPlan.Job(action: .delete, dryRun: false)
    let dryDelete = BatchPlan.Job(action: .delete, dryRun: true)

    func testExportsOnlyAreOneSegmentWithNothingErased() {
        let plan = BatchPlan([export, export, export], maxJobs: 1000)
        XCTAssertEqual(plan.segments.map(\.jobs), [[0, 1, 2]])
        XCTAssertEqual(plan.segments[0].erased, [])
        XCTAssertEqual(plan.segments[0].finishOrder, [0, 1, 2])
    }

    func testADeleteEndsTheSegmentBeforeTheNextNonDelete() {
        // export, delete, delete | export, delete | export
        let plan = BatchPlan([export, delete, delete, export, delete, export], maxJobs: 1000)
        XCTAssertEqual(plan.segments.map(\.jobs), [[0, 1, 2], [3, 4], [5]])
        XCTAssertEqual(plan.segments.map(\.erased), [[1, 2], [4], []])
        XCTAssertEqual(plan.segments.map(\.sealedBeforeErasure), [[0], [3], [5]])
        XCTAssertEqual(plan.jobs(from: 1), [3, 4, 5])
    }

    func testExportsOfASegmentAreSealedBeforeItsErasure() {
        // A delete first, then exports after it start a new segment; exports before a delete are
        // in its segment and finish first.
        let plan = BatchPlan([delete, export, export, delete], maxJobs: 1000)
        XCTAssertEqual(plan.segments.map(\.jobs), [[0], [1, 2, 3]])
        XCTAssertEqual(plan.segments[1].finishOrder, [1, 2, 3])
        let mixed = BatchPlan([export, delete, export], maxJobs: 1000)
        XCTAssertEqual(mixed.segments[0].finishOrder, [0, 1], "the export searched before the erasure is sealed first")
    }

    func testADryRunDeleteIsNotErasedButStillEndsItsSegment() {
        let plan = BatchPlan([dryDelete, delete, export], maxJobs: 1000)
        XCTAssertEqual(plan.segments.map(\.jobs), [[0, 1], [2]])
        XCTAssertEqual(plan.segments[0].erased, [1])
        XCTAssertEqual(plan.segments[0].sealedBeforeErasure, [0])
        XCTAssertEqual(plan.segments[0].finishOrder, [0, 1])
        XCTAssertEqual(plan.segments[0].rehearsed, [0], "a dry-run delete is rehearsed, not erased")
        XCTAssertEqual(plan.segments[1].rehearsed, [])
        XCTAssertEqual(BatchPlan([export, dryDelete], maxJobs: 10).segments[0].rehearsed, [1], "only deletes")
    }

    func testMaxJobsBoundsEverySegment() {
        let plan = BatchPlan(Array(repeating: export, count: 7), maxJobs: 3)
        XCTAssertEqual(plan.segments.map(\.jobs), [[0, 1, 2], [3, 4, 5], [6]])
        let deletes = BatchPlan(Array(repeating: delete, count: 5), maxJobs: 2)
        XCTAssertEqual(deletes.segments.map(\.erased), [[0, 1], [2, 3], [4]])
        XCTAssertEqual(
            BatchPlan([export, export], maxJobs: 0).segments.count, 2, "a bound below 1 means one job per segment")
    }

    func testNoJobsNoSegments() {
        XCTAssertEqual(BatchPlan([], maxJobs: 10).segments, [])
    }
}
