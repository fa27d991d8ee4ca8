import Foundation

extension JobStore {
    /// The job id that `reference` names: a job id, the request id the job was received under
    /// (`TICKET-4711`), or a unique prefix of a job id (at least 4 characters). Used by every command
    /// that takes a job (`status`, `events`, `close`, `deliver`). A reference matching several jobs
    /// is an error listing their job ids (never request ids or anything else of the subject), also
    /// when it is the request id of one job and a job-id prefix of another.
    package func resolve(_ reference: String) throws -> String {
        let ref = reference.trimmingCharacters(in: .whitespaces)
        guard !ref.isEmpty else { throw DSARError(.usage, "expected a job id, a request id or a job-id prefix") }
        if UUIDv7.isValid(ref), exists(ref) { return ref }
        var byRequest: [String] = []
        var byPrefix: [String] = []
        let lowered = ref.lowercased()
        let prefixable =
            ref.utf8.count >= 4
            && ref.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46) || $0 == 0x2D
            }
        for r in try all() {
            if r.requestID == ref { byRequest.append(r.jobID) }
            if prefixable && r.jobID.lowercased().hasPrefix(lowered) { byPrefix.append(r.jobID) }
        }
        // A request id is the submitter's choice: one that is also a prefix of another job's id
        // must not silently redirect the operator's reference, so both kinds count.
        let candidates = Array(Set(byRequest + byPrefix)).sorted()
        if candidates.count == 1 { return candidates[0] }
        if candidates.isEmpty {
            throw DSARError(
                .notFound,
                "no job has the id, request id or job-id prefix \"\(ref)\" in \(layout.jobs); `dsar status` lists the jobs",
                path: layout.jobs)
        }
        let kinds =
            !byRequest.isEmpty && !byPrefix.isEmpty
            ? " (as a request id: \(Set(byRequest).sorted().joined(separator: ", ")); as a job-id prefix: \(Set(byPrefix).sorted().joined(separator: ", ")))"
            : ""
        throw DSARError(
            .usage,
            "\"\(ref)\" matches \(candidates.count) jobs: \(candidates.joined(separator: ", "))\(kinds); give the whole job id"
        )
    }
}
