import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

// Small helpers shared by the end-to-end tests (all of them drive the real `dsar` binary).

/// Writes a text file, creating its directory, with the given mode (connector configs, data, scripts).
func writeFile(_ path: String, _ text: String, mode: Int = 0o644) throws {
    try FileManager.default.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, mode_t(mode))
}

/// A compact request body: `{"request_id": …, "user_id": …, "action": …}`.
func requestJSON(_ requestID: String?, user: String, action: String = "export", extra: String = "") -> String {
    var s = "{"
    if let requestID { s += "\"request_id\": \"\(requestID)\", " }
    s += "\"user_id\": \"\(user)\", \"action\": \"\(action)\"\(extra)}"
    return s
}

/// Writes `count` valid requests (request ids `prefix-1` …) into the inbox and returns their ids.
@discardableResult
func dropRequests(_ spool: TempSpool, prefix: String, count: Int) throws -> [String] {
    var ids: [String] = []
    for k in 1...count {
        let rid = "\(prefix)-\(k)"
        try spool.drop("req-\(prefix)-\(k).json", requestJSON(rid, user: "\(100_000 + k)"))
        ids.append(rid)
    }
    return ids
}

extension TempSpool {
    /// `dsar status --json` as an array of dictionaries.
    func statusJSON(file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let r = try dsar(["status", "--json"])
        XCTAssertEqual(r.status, 0, "dsar status --json failed: \(r.stderr)", file: file, line: line)
        let any = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        guard let arr = any as? [[String: Any]] else { throw TestFailure("status --json is not an array: \(r.stdout)") }
        return arr
    }

    /// The text of `rejected/<name>.reason`.
    func reason(_ name: String) -> String { text("rejected/\(name).reason") }

    /// The kind of a spool entry (lstat, never following links), nil when absent.
    func kind(_ relative: String) -> FileSystem.Status.Kind? {
        (try? FileSystem.lstatus(root + "/" + relative))?.kind
    }

    /// Names of job record files (`jobs/<id>.json`).
    func recordNames() -> [String] { list("jobs").filter { $0.hasSuffix(".json") } }

    /// The single record with this request id (fails unless there is exactly one).
    func record(requestID: String, file: StaticString = #filePath, line: UInt = #line) throws -> JobRecord? {
        let matches = try records().filter { $0.requestID == requestID }
        XCTAssertEqual(matches.count, 1, "records with request_id \(requestID)", file: file, line: line)
        return matches.first
    }
}

/// Checks a spool at rest after a clean `dsar run`: each request id in `expected` has exactly one
/// COMPLETED job with a published outbox entry and no leftover claimed request (or, with
/// `allowRejected`, is in rejected/ and has no job), and nothing is left in inbox/, active/, tmp/,
/// failed/ or as outbox staging.
func assertSpoolAccountsFor(
    _ spool: TempSpool, expected: [String], allowRejected: Bool = false, context: String,
    file: StaticString = #filePath, line: UInt = #line
) throws {
    for p in try spoolProblems(spool, expected: expected, allowRejected: allowRejected) {
        XCTFail("\(context): \(p)", file: file, line: line)
    }
}

/// What `assertSpoolAccountsFor` checks, as a list of problems (empty when all is well); usable
/// from any thread.
func spoolProblems(_ spool: TempSpool, expected: [String], allowRejected: Bool = false) throws -> [String] {
    var problems: [String] = []
    func check(_ ok: Bool, _ what: @autoclosure () -> String) { if !ok { problems.append(what()) } }
    let records = try spool.records()
    var byRequest: [String: [JobRecord]] = [:]
    for r in records { byRequest[r.requestID ?? "<none>", default: []].append(r) }
    let rejectedTexts = spool.list("rejected").filter { !$0.hasSuffix(".reason") }.map { spool.text("rejected/" + $0) }
    var lost: [String] = []
    for rid in expected {
        let jobs = byRequest[rid] ?? []
        let inRejected = rejectedTexts.filter { $0.contains("\"\(rid)\"") }.count
        check(jobs.count <= 1, "request \(rid) has \(jobs.count) jobs: \(jobs.map(\.jobID))")
        if let job = jobs.first {
            check(job.status == .completed, "job of \(rid) is \(job.status.rawValue): \(job.error ?? "")")
            check(job.outbox == "outbox/\(job.jobID)", "outbox of \(rid) is \(job.outbox ?? "nil")")
            check(spool.kind("outbox/\(job.jobID)") == .directory, "no outbox/\(job.jobID)/ entry for \(rid)")
            check(spool.kind("active/\(job.jobID).json") == nil, "claimed request of \(rid) kept in active/")
            check(inRejected == 0, "\(rid) has a job AND was rejected")
        } else if inRejected == 1 && allowRejected {
            continue
        } else {
            lost.append(rid)
        }
    }
    check(lost.isEmpty, "requests neither completed nor rejected (lost): \(lost)")
    let strays = records.filter { !expected.contains($0.requestID ?? "<none>") }
    check(strays.isEmpty, "jobs for requests never dropped: \(strays.map(\.jobID))")
    if !allowRejected { check(spool.list("rejected").isEmpty, "rejected/ should be empty: \(spool.list("rejected"))") }
    for dir in ["inbox", "active", "tmp", "failed"] {
        check(spool.allFiles(dir).isEmpty, "\(dir)/ should be empty: \(spool.allFiles(dir))")
    }
    let outbox = (try? FileSystem.list(spool.root + "/outbox")) ?? []
    check(outbox.filter { $0.hasPrefix(".") }.isEmpty, "outbox staging left: \(outbox.filter { $0.hasPrefix(".") })")
    check(
        Set(outbox.filter { !$0.hasPrefix(".") }) == Set(records.filter { $0.status == .completed }.map(\.jobID)),
        "outbox entries differ from the completed jobs")
    problems += leftoverTempFiles(spool).map { "temp file left behind: \($0)" }
    return problems
}

/// Temp files (`*.tmp`, `*.partial`) anywhere in the spool: after a clean run that followed a
/// crash, recovery should have removed every one of them.
func leftoverTempFiles(_ spool: TempSpool) -> [String] {
    spool.allFiles().filter { $0.hasSuffix(".tmp") || $0.hasSuffix(".partial") }
}

/// Runs `body` for each index on up to `width` threads at once; returns the problems each reported,
/// in index order (a thrown error counts as a problem).
func inParallel(_ count: Int, width: Int, _ body: @escaping @Sendable (Int) throws -> [String]) -> [String] {
    final class Box: @unchecked Sendable {
        let lock = NSLock()
        var results: [[String]]
        init(_ n: Int) { results = Array(repeating: [], count: n) }
    }
    let box = Box(count)
    let queue = OperationQueue()
    queue.maxConcurrentOperationCount = width
    for k in 0..<count {
        queue.addOperation {
            let r: [String]
            do { r = try body(k) } catch { r = ["\(error)"] }
            box.lock.lock()
            box.results[k] = r
            box.lock.unlock()
        }
    }
    queue.waitUntilAllOperationsAreFinished()
    return box.results.flatMap { $0 }
}

/// Every string and number (as text) in a JSON document, recursively (keys included).
func jsonScalars(_ v: Any) -> [String] {
    switch v {
    case let d as [String: Any]: return d.keys.map { $0 } + d.values.flatMap(jsonScalars)
    case let a as [Any]: return a.flatMap(jsonScalars)
    case let s as String: return [s]
    case let n as NSNumber: return [n.stringValue]
    default: return []
    }
}

/// Seconds since the epoch, now.
func now() -> Double { Date().timeIntervalSince1970 }

extension TempSpool {
    /// Every journal entry in order (segments by name), as dictionaries.
    func journalEntries() throws -> [[String: Any]] {
        let dir = root + "/journal"
        var out: [[String: Any]] = []
        for seg in try FileSystem.list(dir).filter({ $0.hasSuffix(".jsonl") && $0.first?.isNumber == true }).sorted() {
            for line in text("journal/" + seg).split(separator: "\n") {
                if let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] {
                    out.append(obj)
                }
            }
        }
        return out
    }

    /// Journal entries of one type.
    func journal(_ type: String) throws -> [[String: Any]] {
        try journalEntries().filter { $0["type"] as? String == type }
    }
}
