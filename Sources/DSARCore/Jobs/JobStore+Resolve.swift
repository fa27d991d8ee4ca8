import Foundation

extension JobStore {
    /// The job id that `reference` names: a job id, the request id the job was received under
    /// (`TICKET-4711`), or a unique prefix of a job id (at least 4 characters). Used by every command
    /// that takes a job (`status`, `events`, `close`, `deliver`). A reference matching several jobs
    /// is an error listing their job ids (never request ids or anything else of the subject).
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
        // A request id names its job even when it also happens to be a job-id prefix.
        var candidates = byRequest.isEmpty ? byPrefix : byRequest
        candidates = Array(Set(candidates)).sorted()
        if candidates.count == 1 { return candidates[0] }
        if candidates.isEmpty {
            throw DSARError(
                .notFound,
                "no job has the id, request id or job-id prefix \"\(ref)\" in \(layout.jobs); `dsar status` lists the jobs",
                path: layout.jobs)
        }
        throw DSARError(
            .usage,
            "\"\(ref)\" matches \(candidates.count) jobs: \(candidates.joined(separator: ", ")); give the whole job id")
    }
}
