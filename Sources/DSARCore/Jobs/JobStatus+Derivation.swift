import Foundation

/// Everything a job's final status is decided from: what its connectors found, what erasure did,
/// how publishing went, or why it could not be run at all.
package struct JobEvidence: Sendable {
    /// How publishing the job's outbox entry went.
    package enum Seal: Sendable, Equatable {
        /// Not published yet (the status before sealing), or published: neither changes the status.
        case notFailed
        /// Publishing failed (the reason, already scrubbed of identifiers).
        case failed(String)
    }

    /// One outcome per configured connector (none: nothing was searched).
    package var outcomes: [ConnectorOutcome]
    /// For a delete job that was erased: per-file results, erasure errors and the second search's gaps.
    package var erasure: ErasureOutcome?
    package var seal: Seal
    /// Set when the job could not be run at all (its request no longer parses, it was set aside
    /// after repeated crashes, …): the job is FAILED with this reason, whatever else is known.
    package var unrunnable: String?

    package init(
        outcomes: [ConnectorOutcome] = [], erasure: ErasureOutcome? = nil, seal: Seal = .notFailed,
        unrunnable: String? = nil
    ) {
        self.outcomes = outcomes
        self.erasure = erasure
        self.seal = seal
        self.unrunnable = unrunnable
    }
}

/// A job's status and the reason shown with it (nil when COMPLETED).
package struct JobVerdict: Sendable, Equatable {
    package var status: JobStatus
    package var error: String?

    package init(status: JobStatus, error: String?) {
        self.status = status
        self.error = error
    }
}

extension JobStatus {
    /// The one rule deciding a job's status. COMPLETED only when every connector searched, nothing
    /// was left unaccounted for, erasure (if any) worked and was verified, and publishing did not
    /// fail. Otherwise PARTIAL when something true can still be said (some connectors searched,
    /// something was erased), FAILED when nothing can (all connectors failed, none configured,
    /// nothing erased, publishing failed, or the job could not run).
    package static func derive(_ e: JobEvidence) -> JobVerdict {
        if let reason = e.unrunnable { return JobVerdict(status: .failed, error: reason) }
        if case .failed(let failure) = e.seal {
            return JobVerdict(status: .failed, error: "publishing failed: \(failure)")
        }
        let outcomes = e.outcomes
        let failed = outcomes.filter { $0.status == .failed }
        var status: JobStatus = failed.isEmpty ? .completed : (failed.count == outcomes.count ? .failed : .partial)
        var error: String? =
            failed.isEmpty ? nil : failed.map { "\($0.name): \($0.error ?? "failed")" }.joined(separator: "; ")
        if outcomes.isEmpty {
            // Never certify a search of nothing (the run refuses to start without connectors).
            status = .failed
            error = "no connectors are configured: nothing was searched"
        }
        // Coverage: a source that was not searched completely, or an occurrence of the subject's
        // identifiers that no matched record accounts for, means the statement would not be true.
        let gaps = outcomes.filter { $0.status == .ok }.flatMap(\.findings.gaps)
        if !gaps.isEmpty && status == .completed {
            status = .partial
            error = describe(gaps, lead: "not everything could be accounted for")
        } else if !gaps.isEmpty, let e = error {
            error = e + "; " + describe(gaps, lead: "also")
        }
        if let erasure = e.erasure, status != .failed {
            var problems = erasure.errors.sorted { $0.key < $1.key }.map { "\($0.key): erasure failed: \($0.value)" }
            if erasure.unexpectedRemaining > 0 {
                problems.append(
                    "\(erasure.unexpectedRemaining) records of the subject remain after erasure (see the receipt)")
            }
            if !erasure.verification.isEmpty {
                problems.append(
                    describe(erasure.verification, lead: "the search after erasure still finds the subject"))
            }
            if !problems.isEmpty {
                status =
                    erasure.files.contains { $0.deleted + $0.redacted > 0 } || status == .partial ? .partial : .failed
                error = ([error].compactMap { $0 } + problems).joined(separator: "; ")
            }
        }
        return JobVerdict(status: status, error: error)
    }

    /// One sentence for a job's error: how many gaps, and the first few with their locations.
    static func describe(_ gaps: [CoverageGap], lead: String) -> String {
        let shown = gaps.prefix(3).map(\.located).joined(separator: "; ")
        let more = gaps.count > 3 ? "; and \(gaps.count - 3) more (see the manifest's coverage)" : ""
        return "\(lead) (\(gaps.count) gap\(gaps.count == 1 ? "" : "s")): \(shown)\(more)"
    }
}
