#if canImport(Glibc)
import Glibc
#endif

/// The search that does not depend on a parser: a source file's raw bytes (inflated for gzip) are
/// searched for every identifier of the batch as tokens (``TextMatcher``), and every hit must lie
/// inside a record that the structured pass matched for the same job. A hit elsewhere is a
/// ``CoverageGap``: in a record that could not be parsed, or in bytes no matched record covers (a
/// column or table the rules do not search, a parser gap, a truncated tail).
///
/// Bare numbers of fewer than ``distinctiveDigits`` digits (a `user_id` such as 1042) occur
/// everywhere as counts and sizes; outside unparsed records they are confirmed by the structured
/// pass alone. E-mails, phones, IPs and every other value count everywhere.
enum RawVerifier {
    /// All-digit values shorter than this are only raw-checked inside unparsed records.
    static let distinctiveDigits = 8
    /// Gaps listed per job and file; the rest are counted in one more gap.
    static let maxGapsPerFile = 20

    /// Whether a raw hit of `id` outside any record is evidence (not a coincidence).
    static func isDistinctive(_ id: Identifier) -> Bool {
        if id.type == "email" || id.type == "phone" || id.type == "ip" { return true }
        let u = id.value.utf8
        return !(u.count < distinctiveDigits && u.allSatisfy { $0 >= 0x30 && $0 <= 0x39 })
    }

    /// Size and SHA-256 of a file as stored.
    /// Size, SHA-256 and whether the file ends with a line break (a cut source may end mid-record).
    static func hash(
        _ path: String, options: SourceFile.Options = SourceFile.Options()
    ) throws -> (bytes: Int64, sha256: String, endsWithNewline: Bool) {
        let fd = try CSVReader.open(path, options: options)
        defer { close(fd) }
        var h = StreamingSHA256()
        var total: Int64 = 0
        var last: UInt8 = 0x0A
        let size = 1 << 20
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buf.deallocate() }
        while true {
            try SourceFile.checkCancelled(path)
            let n = try FileSystem.readSome(fd, into: buf.baseAddress!, count: size, path: path)
            if n == 0 { break }
            h.update(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
            total += Int64(n)
            last = buf[n - 1]
        }
        return (total, h.hexDigest(), last == 0x0A)
    }

    /// Searches `path` for the batch's identifiers; returns the gaps per batch job index.
    /// `accounted[j]` are the byte ranges (sorted or not) of records matched for job j in this file;
    /// `unparsedLines` the lines where unparsed records start; with `cutTail`, a last line without a
    /// line break (a cut source's partial record) counts as unparsed too.
    /// `prefilter: false` scans every line with the token path (the differential tests' reference).
    static func search(
        path: String, connector: String, batch: ScanBatch, accounted: [Int: [Range<Int64>]], unparsedLines: Set<Int>,
        cutTail: Bool = false, outside: CoverageGap.Kind = .unmatched,
        options: SourceFile.Options = SourceFile.Options(), prefilter: Bool = true
    ) throws -> [Int: [CoverageGap]] {
        var ruledOut = 0
        return try search(
            path: path, connector: connector, batch: batch, accounted: accounted, unparsedLines: unparsedLines,
            cutTail: cutTail, outside: outside, options: options, prefilter: prefilter, linesRuledOut: &ruledOut)
    }

    /// ``search(path:connector:batch:accounted:unparsedLines:cutTail:outside:options:prefilter:)``,
    /// counting in `linesRuledOut` the lines the literal prefilter ruled out (never token-scanned).
    ///
    /// A small batch (``LiteralPrefilter/maxNeedles``; not with `DSAR_SCAN_PREFILTER=off`) rules a
    /// line out when it holds none of the needles (and, e-mails searched, no non-ASCII byte): the
    /// token scan could find nothing in it, so it is skipped. Phones have no needle: with a phone in
    /// the batch every line is scanned (``TextMatcher/scan(_:into:)`` still prefilters the rest).
    static func search(
        path: String, connector: String, batch: ScanBatch, accounted: [Int: [Range<Int64>]], unparsedLines: Set<Int>,
        cutTail: Bool, outside: CoverageGap.Kind, options: SourceFile.Options, prefilter: Bool,
        linesRuledOut: inout Int
    ) throws -> [Int: [CoverageGap]] {
        let matcher = TextMatcher(table: batch.table, types: nil, prefilter: prefilter)
        guard !matcher.isInert else { return [:] }
        // Lines without a needle cannot produce a token hit (no phone: phones are searched everywhere).
        let lineFilter = matcher.wantPhone ? nil : matcher.prefilter
        var ruledOut = 0
        defer { linesRuledOut += ruledOut }
        let sorted = accounted.mapValues(RawVerifier.merged)
        var gaps: [Int: [CoverageGap]] = [:]
        var extra: [Int: Int] = [:]
        var hits: [TextMatch] = []
        var distinctive: [Int: Bool] = [:]
        var reader = try LineReader(path: path, options: options)
        try reader.forEachLine { line, number, offset, terminator in
            if let lineFilter, !lineFilter.mayMatch(line) {
                ruledOut += 1
                return
            }
            hits.removeAll(keepingCapacity: true)
            matcher.scan(line, into: &hits)
            guard !hits.isEmpty else { return }
            let unparsed = unparsedLines.contains(number) || (cutTail && terminator == 0)
            for m in hits {
                let hit = batch.table.hit(m.entry)
                let at = offset + Int64(m.range.lowerBound)
                for j in hit.jobs {
                    if let ranges = sorted[j], RawVerifier.contains(ranges, at) { continue }
                    if !unparsed {
                        let d = distinctive[m.entry] ?? RawVerifier.isDistinctive(hit.identifier)
                        distinctive[m.entry] = d
                        if !d { continue }
                    }
                    let type = hit.identifier.type
                    if gaps[j, default: []].count >= maxGapsPerFile {
                        extra[j, default: 0] += 1
                        continue
                    }
                    let gap =
                        unparsed
                        ? CoverageGap(
                            kind: .unparsedRecord, connector: connector, file: path, line: number, type: type,
                            message: "a record that could not be parsed holds the subject's \(type)")
                        : CoverageGap(
                            kind: outside, connector: connector, file: path, line: number, type: type,
                            message: outside == .remaining
                                ? "the subject's \(type) is still in the file after erasure, outside every retained record"
                                : "the subject's \(type) occurs outside every record the connector's rules matched (a column or table that is not searched, or a value the parser read differently)"
                        )
                    if !(gaps[j]?.contains(gap) ?? false) { gaps[j, default: []].append(gap) }
                }
            }
        }
        for (j, n) in extra {
            gaps[j, default: []].append(
                CoverageGap(
                    kind: outside, connector: connector, file: path,
                    message: "\(n) more occurrences of the subject's identifiers like the ones above"))
        }
        return gaps
    }

    /// The ranges sorted and merged into disjoint ones.
    static func merged(_ ranges: [Range<Int64>]) -> [Range<Int64>] {
        var out: [Range<Int64>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, r.lowerBound <= last.upperBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    /// Whether `x` lies in one of the sorted, disjoint ranges.
    static func contains(_ ranges: [Range<Int64>], _ x: Int64) -> Bool {
        var lo = 0
        var hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].lowerBound <= x { lo = mid + 1 } else { hi = mid }
        }
        return lo > 0 && ranges[lo - 1].contains(x)
    }
}
