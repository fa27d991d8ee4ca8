import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads and writes job records; every write is atomic and durable, and read-modify-write happens
/// under a short lock so that `dsar extend` and a running `dsar watch` never lose each other's change.
package struct JobStore: Sendable {
    package let layout: SpoolLayout

    package init(layout: SpoolLayout) { self.layout = layout }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// Loads one record.
    package func load(_ jobID: String) throws -> JobRecord {
        guard UUIDv7.isValid(jobID) else {
            throw DSARError(.notFound, "\"\(jobID)\" is not a job id (expected a UUID such as 019a…-…)")
        }
        let path = layout.jobRecord(jobID)
        guard FileSystem.exists(path) else {
            throw DSARError(.notFound, "no job \(jobID) in \(layout.jobs); `dsar status` lists the jobs", path: path)
        }
        do {
            return try JSONDecoder().decode(JobRecord.self, from: Data(try FileSystem.readFile(path, limit: 16 << 20)))
        } catch let e as DSARError {
            throw e
        } catch {
            throw DSARError(.io, "job record \(path) is unreadable: \(error)", path: path, cause: error)
        }
    }

    /// Whether a record exists.
    package func exists(_ jobID: String) -> Bool { FileSystem.exists(layout.jobRecord(jobID)) }

    /// Writes a record (atomically, fsynced).
    /// With `syncDirectory: false` the caller calls ``syncDirectory()`` after a batch of saves.
    package func save(_ record: JobRecord, syncDirectory: Bool = true) throws {
        let data = try JobStore.encoder.encode(record)
        try FileSystem.writeAtomically(
            layout.jobRecord(record.jobID), Array(data) + [0x0A], mode: 0o600, syncDirectory: syncDirectory)
    }

    /// Writes several records in phases: all written, all fsynced (writeback started together), then
    /// `records.synced` (crash point), all renamed (`renamed` called after each, in order), one fsync
    /// of `jobs/`. A crash before the renames leaves every record as it was (temp files are removed
    /// by recovery); after, each renamed record is whole. The caller holds the records lock if it
    /// read the records to change them.
    package func saveAll(_ records: [JobRecord], renamed: (Int) -> Void = { _ in }) throws {
        guard !records.isEmpty else { return }
        var files: [FileSystem.BatchFile] = []
        do {
            for r in records {
                let data = try JobStore.encoder.encode(r)
                files.append(
                    try FileSystem.writeBatchFile(layout.jobRecord(r.jobID), Array(data) + [0x0A], mode: 0o600))
            }
        } catch {
            for f in files {
                close(f.fd)
                unlink(f.temp)
            }
            throw error
        }
        try FileSystem.commitBatch(
            files, directory: layout.jobs, synced: { CrashPoint.hit("records.synced") }, renamed: renamed)
    }

    /// Read-modify-write of several records under one hold of the records lock, saved with
    /// ``saveAll(_:renamed:)``. Returns the new records in the order of `ids`.
    @discardableResult
    package func updateAll(
        _ ids: [String], renamed: (Int) -> Void = { _ in }, _ change: (Int, inout JobRecord) throws -> Void
    ) throws -> [JobRecord] {
        guard !ids.isEmpty else { return [] }
        return try withRecordsLock {
            var out: [JobRecord] = []
            out.reserveCapacity(ids.count)
            for (k, id) in ids.enumerated() {
                var r = try load(id)
                try change(k, &r)
                out.append(r)
            }
            try saveAll(out, renamed: renamed)
            return out
        }
    }

    /// Makes record renames durable (after saves with `syncDirectory: false`).
    package func syncDirectory() throws { try FileSystem.syncDirectory(layout.jobs) }

    /// Read-modify-write of one record under the records lock.
    @discardableResult
    package func update(
        _ jobID: String, syncDirectory: Bool = true, _ change: (inout JobRecord) throws -> Void
    ) throws -> JobRecord {
        try withRecordsLock {
            var r = try load(jobID)
            try change(&r)
            try save(r, syncDirectory: syncDirectory)
            return r
        }
    }

    /// Runs `body` holding `jobs/.lock` (held only for the length of a record update).
    package func withRecordsLock<T>(_ body: () throws -> T) throws -> T {
        try FileLock.withExclusive(path: layout.jobs + "/.lock", body)
    }

    /// Every job id with a record, oldest first.
    package func allIDs() throws -> [String] {
        try FileSystem.list(layout.jobs).compactMap { name in
            guard name.hasSuffix(".json"), !name.hasPrefix(".") else { return nil }
            let id = String(name.dropLast(5))
            return UUIDv7.isValid(id) ? id : nil
        }
    }

    /// Every record, oldest first (unreadable ones are reported through `onError`).
    package func all(onError: (DSARError) -> Void = { _ in }) throws -> [JobRecord] {
        try allIDs().compactMap { id in
            do { return try load(id) } catch let e as DSARError {
                onError(e)
                return nil
            }
        }
    }
}
