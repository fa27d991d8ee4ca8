import Foundation

extension SpoolLayout {
    /// Moves a claimed request (with its signature and identity set) from `active/` to `failed/`,
    /// beside a `<job-id>.reason` file saying why: nothing is lost, and the job is not run. Each
    /// step is a rename on one filesystem; both directories are fsynced.
    package func setClaimedRequestAside(_ jobID: String, reason: String) throws {
        let text = "\(Timestamp.format(Date())) job \(jobID): \(reason)\n"
        try FileSystem.writeAtomically(failed + "/\(jobID).reason", Array(text.utf8), mode: 0o600)
        if FileSystem.exists(activeRequest(jobID) + ".sig") {
            try FileSystem.rename(activeRequest(jobID) + ".sig", to: failed + "/\(jobID).json.sig")
        }
        // The identity set goes with the request (before it, so a request in failed/ always has it).
        if FileSystem.exists(activeIdentity(jobID)) {
            try FileSystem.rename(activeIdentity(jobID), to: failedIdentity(jobID))
        }
        try FileSystem.rename(activeRequest(jobID), to: failed + "/\(jobID).json")
        try FileSystem.syncDirectory(failed)
        try FileSystem.syncDirectory(active)
    }
}
