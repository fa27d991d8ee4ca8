/// How a batch of jobs (in received order) is run: in segments, each searched with one pass over
/// the sources. A request that comes after a delete is searched only once that delete has been
/// carried out (a new segment); consecutive deletes are erased together, one rewrite per file. A
/// segment also ends at `maxJobs`: what was found is held in memory until sealed, so this bounds
/// memory for very large batches. Pure: no I/O.
package struct BatchPlan: Sendable, Equatable {
    /// What the plan needs to know of a job.
    package struct Job: Sendable, Equatable {
        package var action: RequestAction
        package var dryRun: Bool

        package init(action: RequestAction, dryRun: Bool) {
            self.action = action
            self.dryRun = dryRun
        }
    }

    /// Jobs scanned together; indexes into the batch's jobs, in received order.
    package struct Segment: Sendable, Equatable {
        /// Every job of the segment, in received order.
        package var jobs: [Int]
        /// Jobs whose data is erased (delete, not a dry run), in received order.
        package var erased: [Int]
        /// The other jobs of the segment (exports, dry runs): searched before the erasure, so they
        /// are sealed before it.
        package var sealedBeforeErasure: [Int]

        /// Dry-run deletes, in received order: their erasure is rehearsed (carried out and rolled
        /// back) where a source can undo it; they are sealed before the erasure.
        package var rehearsed: [Int] = []

        /// The order jobs are finished in: those sealed before the erasure, then the erased ones.
        package var finishOrder: [Int] { sealedBeforeErasure + erased }
    }

    package let segments: [Segment]

    /// Plans `jobs` (in received order), at most `maxJobs` per segment (at least 1).
    package init(_ jobs: [Job], maxJobs: Int) {
        let limit = max(1, maxJobs)
        var groups: [[Int]] = []
        for (k, j) in jobs.enumerated() {
            if let last = groups.last?.last, jobs[last].action == .delete, j.action != .delete {
                groups.append([k])
            } else if groups.isEmpty || groups[groups.count - 1].count >= limit {
                groups.append([k])
            } else {
                groups[groups.count - 1].append(k)
            }
        }
        segments = groups.map { g in
            let erased = g.filter { jobs[$0].action == .delete && !jobs[$0].dryRun }
            return Segment(
                jobs: g, erased: erased, sealedBeforeErasure: g.filter { !erased.contains($0) },
                rehearsed: g.filter { jobs[$0].action == .delete && jobs[$0].dryRun })
        }
    }

    /// The jobs of segment `n` and of every later one (what is put back when the batch stops there).
    package func jobs(from n: Int) -> [Int] { segments[n...].flatMap(\.jobs) }
}
