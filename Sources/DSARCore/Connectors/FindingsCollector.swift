import Foundation
import Logging

/// Converts bytes to a JSON string, or `{"base64": …}` when they are not valid UTF-8 (exported without loss).
func jsonText(_ bytes: [UInt8]) -> JSONValue {
    if let s = String(validating: bytes, as: UTF8.self) { return .string(s) }
    return .obj(["base64": .string(Data(bytes).base64EncodedString())])
}

extension ConnectorConfig {
    /// Sum of the sizes of the files a scan reads (compressed sizes for gzip).
    func totalSourceBytes() -> Int64 {
        sources().reduce(Int64(0)) { sum, p in sum + (((try? FileSystem.status(p)) ?? nil)?.size ?? 0) }
    }
}

/// Accumulates per-job findings during one pass over a source.
struct FindingsCollector: Sendable {
    var byJob: [Int: ConnectorFindings] = [:]
    let batch: ScanBatch
    var known: [Set<Identifier>]
    /// Every source read, in order.
    var coverage: [SourceCoverage] = []
    /// Gaps per batch job index.
    var gaps: [Int: [CoverageGap]] = [:]
    /// Gaps that concern every job (truncation, missing columns, no sources).
    var sourceGaps: [CoverageGap] = []

    init(batch: ScanBatch) {
        self.batch = batch
        known = batch.jobs.map { Set($0.identifiers) }
    }

    mutating func add(_ job: Int, _ record: FoundRecord, derived: [(Identifier, String)] = []) {
        byJob[job, default: ConnectorFindings()].found.append(record)
        byJob[job]!.records += 1
        for d in derived where known[job].insert(d.0).inserted { byJob[job]!.derived.append(d) }
    }

    /// Appends what another pass over the same batch found (a later file), keeping derived identifiers unique.
    mutating func merge(_ other: FindingsCollector) {
        for job in other.byJob.keys.sorted() {
            let f = other.byJob[job]!
            byJob[job, default: ConnectorFindings()].found += f.found
            byJob[job]!.records += f.records
            for d in f.derived where known[job].insert(d.0).inserted { byJob[job]!.derived.append(d) }
        }
        coverage += other.coverage
        sourceGaps += other.sourceGaps
        for (j, g) in other.gaps { gaps[j, default: []] += g }
    }

    /// Records what the scan of `src` established: size and hash as stored, records parsed and
    /// unparsed, truncation; with `rawSearch`, searches the raw bytes (``RawVerifier``) for hits
    /// outside the records matched so far for each job.
    /// `digest` is what the scan's own read of the whole file established (``SourceDigest``); without
    /// it (a reader that does not keep one, a part of a file, an early stop) the file is read again here.
    mutating func cover(
        _ src: String, connector: String, records: Int, unparsedLines: [Int] = [], unparsedCount: Int? = nil,
        truncated: String? = nil, truncatedLine: Int? = nil, truncationAllowed: Bool = false, rawSearch: Bool,
        digest: SourceDigest? = nil, options: SourceFile.Options = SourceFile.Options()
    ) throws {
        let size: Int64
        let sha: String
        let endsWithNewline: Bool
        if let digest {
            (size, sha, endsWithNewline) = (digest.bytes, digest.sha256, digest.endsWithNewline)
        } else {
            // The second read is not scan progress (the bar counts each source once).
            (size, sha, endsWithNewline) = try ProgressCounter.$current.withValue(nil) {
                try RawVerifier.hash(src, options: options)
            }
        }
        var c = SourceCoverage(
            file: src, bytes: size, sha256: sha, records: records, truncated: truncated, rawSearched: rawSearch)
        for l in unparsedLines { c.addUnparsed(line: l) }
        if let unparsedCount { c.unparsed = unparsedCount }
        // A cut source that ends mid-line ends with a partial record, whether the cut is accepted or not.
        let cutTail = truncated != nil && !endsWithNewline && size > 0
        if cutTail { c.unparsed += 1 }
        coverage.append(c)
        if let truncated, !truncationAllowed {
            sourceGaps.append(
                CoverageGap(
                    kind: .truncated, connector: connector, file: src, line: truncatedLine,
                    message: truncated + " (if that is expected, set allow_truncated: true on the connector)"))
        }
        guard rawSearch else { return }
        var accounted: [Int: [Range<Int64>]] = [:]
        for (j, f) in byJob {
            for r in f.found where r.source == src {
                if let range = r.range { accounted[j, default: []].append(range) }
            }
        }
        let found = try ProgressCounter.$current.withValue(nil) {
            try RawVerifier.search(
                path: src, connector: connector, batch: batch, accounted: accounted, unparsedLines: Set(unparsedLines),
                cutTail: cutTail,
                options: options)
        }
        for (j, g) in found { gaps[j, default: []] += g }
    }

    /// A gap for every job: a path the globs match is not a regular file (or is over
    /// `max_file_bytes`), so it was not searched.
    mutating func unreadable(_ entry: SourceFile.Entry, connector: String) {
        sourceGaps.append(
            CoverageGap(
                kind: .unreadable, connector: connector, file: entry.path,
                message: "not read: \(entry.problem ?? "not a regular file")"))
    }

    /// A gap for every job: the connector's paths match no file.
    mutating func noSources(connector: String, paths: [String]) {
        sourceGaps.append(
            CoverageGap(
                kind: .noSources, connector: connector, file: nil,
                message: "no file matches its paths (\(paths.joined(separator: ", "))): nothing was searched"))
    }

    func result(bytesScanned: Int64, extra: [String: String] = [:]) -> [String: ConnectorFindings] {
        var out: [String: ConnectorFindings] = [:]
        for (k, job) in batch.jobs.enumerated() {
            var f = byJob[k] ?? ConnectorFindings()
            f.coverage = coverage
            f.gaps = sourceGaps + (gaps[k] ?? [])
            f.details["bytes_scanned"] = String(bytesScanned)
            for (key, v) in extra { f.details[key] = v }
            out[job.jobID] = f
        }
        return out
    }
}
