import Foundation

extension JobStore {
    /// Ids of claimed jobs waiting to run, oldest first (a PENDING case closed as withdrawn or
    /// refused is not run: nobody is to receive its answer).
    package func pendingJobs() throws -> [String] {
        try FileSystem.list(layout.active).compactMap { name in
            guard name.hasSuffix(".json"), !name.hasPrefix(".") else { return nil }
            let id = String(name.dropLast(5))
            guard UUIDv7.isValid(id), let rec = try? load(id), rec.status == .pending, rec.isOpen else { return nil }
            return id
        }
    }

    /// Puts jobs that were set RUNNING back to PENDING (a clean stop before they were finished).
    func requeue(_ ids: [String]) throws {
        guard !ids.isEmpty else { return }
        for id in ids {
            try update(id, syncDirectory: false) {
                $0.status = .pending
                $0.note("requeued", "dsar was asked to stop before this job finished")
            }
        }
        try syncDirectory()
    }
}
