import DSARTestSupport
import Foundation
import XCTest

@testable import DSARCore

/// Differential test of the literal prefilter: over generated lines full of near misses, a
/// ``TextMatcher`` that rules texts out with ``LiteralPrefilter`` must report exactly the matches
/// (entry, byte range, order) of the plain token path, for batches of about 1, 5 and 50 needles.
final class LiteralPrefilterTests: XCTestCase {
    typealias RNG = SplitMix64

    struct Person {
        var email: String
        var uid: String
        var phone: String?
        var ip: String?
        var ticket: String?
    }

    static let first = ["anna", "ben", "carla", "kate", "zoe", "o'neil", "j.r", "mia-li"]
    static let domains = ["example.com", "mail.example.org", "shop.example", "bücher.example", "kpmg.example"]

    static func person(_ k: Int, _ rng: inout RNG) -> Person {
        let email = "\(rng.pick(first)).\(k)x\(rng.int(90) + 10)@\(rng.pick(domains))"
        let uid = rng.chance(0.5) ? String(10_000_000 + k * 37) : String(100 + k)
        let phone = rng.chance(0.3) ? "+4930\(1_000_000 + k * 13)" : nil
        var ip: String?
        if rng.chance(0.3) {
            ip =
                rng.chance(0.5)
                ? "203.0.\(k % 250).\(k % 200 + 1)" : "2001:db8:\(String(k + 0xa0, radix: 16))::\(k + 1)"
        }
        return Person(email: email, uid: uid, phone: phone, ip: ip, ticket: rng.chance(0.2) ? "TK-\(k)" : nil)
    }

    static func identifiers(_ p: Person) -> [Identifier] {
        var ids = [Identifier(type: "email", value: p.email), Identifier(type: "user_id", value: p.uid)]
        if let v = p.phone { ids.append(Identifier(type: "phone", value: v)) }
        if let v = p.ip {
            guard case .success(let n) = IdentifierNormalizer.normalize(type: "ip", v) else { fatalError(v) }
            ids.append(Identifier(type: "ip", value: n))
        }
        if let v = p.ticket { ids.append(Identifier(type: "ticket", value: v)) }
        return ids
    }

    static func percent(_ s: String, all: Bool) -> String {
        var out = ""
        for b in s.utf8 {
            let alnum = (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A)
            if b == 0x40 || b >= 0x80 || (all && !alnum) || (all && b == UInt8(ascii: "a")) {
                out += String(format: "%%%02X", b)
            } else {
                out.append(Character(Unicode.Scalar(b)))
            }
        }
        return out
    }

    /// A spelling of one of `p`'s identifiers, or a near miss of it.
    static func fragment(_ p: Person, _ rng: inout RNG) -> String {
        let e = p.email
        let (local, domain) = (String(e.split(separator: "@")[0]), String(e.split(separator: "@")[1]))
        switch rng.int(30) {
        case 0: return e
        case 1: return e.uppercased()
        case 2: return local.prefix(1).uppercased() + local.dropFirst() + "@" + domain.uppercased()
        case 3: return percent(e, all: false)
        case 4: return percent(e, all: true)
        case 5: return "x" + e
        case 6: return "x+" + e
        case 7: return e + ".evil.example"
        case 8: return local + "0@" + domain
        case 9: return "\"" + e + "\""
        case 10: return "\"" + e.replacingOccurrences(of: "'", with: "''") + "\",\"" + e + "\"\""
        case 11: return local + "\\u0040" + domain
        case 12: return "\\n" + e
        case 13: return "mailto:" + e + "?subject=x"
        case 14: return p.uid
        case 15: return p.uid + String(rng.int(10))
        case 16: return "1" + p.uid
        case 17: return "uid:" + p.uid
        case 18: return "\\t" + p.uid
        case 19: return "\(p.uid)."
        case 20:
            guard let ph = p.phone else { return p.uid }
            let d = Array(ph.dropFirst())
            return rng.chance(0.5)
                ? "+\(String(d[0..<2])) \(String(d[2..<4])) \(String(d[4...]))"
                : "00\(String(d[0..<2]))-\(String(d[2...]))" + (rng.chance(0.3) ? "9" : "")
        case 21:
            guard let ip = p.ip else { return e }
            if ip.contains(":") {
                let parts = ip.split(separator: ":", omittingEmptySubsequences: false)
                return rng.chance(0.5)
                    ? ip.uppercased() : parts.map { $0.isEmpty ? "0:0:0" : "0" + $0 }.joined(separator: ":")
            }
            return rng.chance(0.5) ? ip : ip + "0"
        case 22: return p.ticket ?? "TK-0"
        case 23: return (p.ticket ?? "TK-0") + "1"
        case 24: return "“" + e + "”"
        case 25: return local + "@" + domain.replacingOccurrences(of: "k", with: "\u{212A}")
        case 26: return local + "\u{0301}@" + domain
        case 27: return e.replacingOccurrences(of: "ü", with: "u\u{0308}")
        case 28: return "user=" + p.uid + "&email=" + percent(e.uppercased(), all: false)
        default: return e + "." + domain
        }
    }

    static let noise = [
        "GET", "/static/app.js", "HTTP/1.1", "200", "1042", "ok", "2026-11-27T10:00:00Z", "{\"level\":\"info\"}",
        "Mozilla/5.0", "10.0.0.1", "::1", "fe80::1", "café", "a@b", "@", "%40", "%4", "x@y.example", "\\N", "--",
    ]
    static let separators = [" ", " ", ",", ";", "\t", "=", "&", "/", ":", "\"", "'", "(", ")", "<", ">", "|", "\\"]

    func line(_ people: [Person], _ rng: inout RNG) -> String {
        var parts: [String] = []
        for _ in 0..<(rng.int(8) + 1) {
            if rng.chance(0.25) {
                parts.append(LiteralPrefilterTests.fragment(rng.pick(people), &rng))
            } else {
                parts.append(rng.pick(LiteralPrefilterTests.noise))
            }
        }
        var out = ""
        for (k, p) in parts.enumerated() {
            if k > 0 { out += rng.pick(LiteralPrefilterTests.separators) }
            out += p
        }
        return out
    }

    func scan(_ m: TextMatcher, _ bytes: [UInt8]) -> [TextMatch] {
        var out: [TextMatch] = []
        bytes.withUnsafeBytes { m.scan($0, into: &out) }
        return out
    }

    /// Every line of the generated corpus (and the whole corpus as one text) gives the same matches
    /// with the prefilter as without; the batch's own identifiers are found, and the prefilter
    /// really ruled lines out.
    func runDifferential(subjects: Int, others: Int, types: Set<String>?, seed: UInt64) throws {
        var rng = RNG(state: seed)
        let everyone = (0..<(subjects + others)).map { LiteralPrefilterTests.person($0, &rng) }
        let batch = Array(everyone.prefix(subjects))
        let table = IdentifierTable(jobs: batch.map(LiteralPrefilterTests.identifiers))
        let fast = TextMatcher(table: table, types: types, prefilterLimit: 64)
        let slow = TextMatcher(table: table, types: types, prefilter: false)
        XCTAssertTrue(fast.usesPrefilter, "the prefilter must be in use for \(subjects) subjects")
        XCTAssertFalse(slow.usesPrefilter)
        var matched = 0
        var ruledOut = 0
        var corpus: [UInt8] = []
        for k in 0..<6000 {
            // Lines mostly about other people, some about the batch's subjects.
            let people = rng.chance(0.3) ? batch : Array(everyone.suffix(others))
            let bytes = Array(line(people, &rng).utf8)
            let a = scan(fast, bytes)
            let b = scan(slow, bytes)
            XCTAssertEqual(a, b, "line \(k): \(String(decoding: bytes, as: UTF8.self))")
            if !b.isEmpty { matched += 1 }
            if a.isEmpty && b.isEmpty { ruledOut += 1 }
            corpus += bytes
            corpus.append(0x0A)
        }
        XCTAssertEqual(scan(fast, corpus), scan(slow, corpus))
        XCTAssertGreaterThan(matched, 200, "the generated lines must hold real matches")
        XCTAssertGreaterThan(ruledOut, 1000)
    }

    func testOneSubjectSameMatchesAsTokenPath() throws {
        // 1 e-mail (2 needles) + 1 user id: about 1–4 needles.
        for seed in [1, 2, 3] as [UInt64] { try runDifferential(subjects: 1, others: 30, types: nil, seed: seed) }
    }

    func testFiveNeedlesSameMatchesAsTokenPath() throws {
        try runDifferential(subjects: 2, others: 30, types: nil, seed: 7)
        try runDifferential(subjects: 2, others: 30, types: ["email"], seed: 8)
    }

    func testFiftyNeedlesSameMatchesAsTokenPath() throws {
        try runDifferential(subjects: 18, others: 40, types: nil, seed: 11)
        try runDifferential(subjects: 18, others: 40, types: ["user_id", "ip", "phone"], seed: 12)
    }

    /// The needle counts the three cases above stand for.
    func testNeedleCounts() {
        var rng = RNG(state: 11)
        let people = (0..<18).map { LiteralPrefilterTests.person($0, &rng) }
        let table = IdentifierTable(jobs: people.map(LiteralPrefilterTests.identifiers))
        XCTAssertTrue(TextMatcher(table: table, types: nil, prefilterLimit: 64).usesPrefilter)
        XCTAssertFalse(TextMatcher(table: table, types: nil, prefilterLimit: 30).usesPrefilter, "≥ 30 needles")
        // An IPv6 value without a safe needle (all of the first six groups zero): no prefilter.
        let loopback = IdentifierTable(jobs: [[Identifier(type: "ip", value: "::1")]])
        XCTAssertFalse(TextMatcher(table: loopback, types: nil).usesPrefilter)
    }

    /// Spellings the token path accepts that share no plain substring with the value as written.
    func testHardSpellingsPassTheFilter() {
        let table = IdentifierTable(jobs: [
            [
                Identifier(type: "email", value: "kate@kpmg.example"), Identifier(type: "ip", value: "2001:db8:a0::1"),
                Identifier(type: "phone", value: "+493012345"),
            ]
        ])
        let fast = TextMatcher(table: table, types: nil)
        let slow = TextMatcher(table: table, types: nil, prefilter: false)
        XCTAssertTrue(fast.usesPrefilter)
        for text in [
            "to %6Bate%40KPMG.example now", "KATE@KPMG.EXAMPLE", "\u{212A}ate@kpmg.example", "kate@\u{212A}pmg.example",
            "2001:0DB8:00A0:0:0:0:0:1", "[2001:db8:a0:0::0.0.0.1]", "call +49 30 12345", "0049-30-123-45",
            "kate@kpmg.example.evil", "xkate@kpmg.example",
        ] {
            let bytes = Array(text.utf8)
            XCTAssertEqual(scan(fast, bytes), scan(slow, bytes), text)
        }
        XCTAssertEqual(scan(fast, Array("2001:0DB8:00A0:0:0:0:0:1".utf8)).count, 1)
        XCTAssertEqual(scan(fast, Array("to %6Bate%40KPMG.example now".utf8)).count, 1)
        XCTAssertEqual(scan(fast, Array("kate@kpmg.example.evil xkate@kpmg.example".utf8)), [])
    }

    // MARK: - The raw search (RawVerifier) with and without the prefilter

    /// A generated file of near misses, some lines matched records of the job, some unparsed: the
    /// raw search reports exactly the same gaps (kind, line, type, order, the count past the cap)
    /// whether the prefilter rules lines out or every line is token-scanned, and it did rule lines out.
    func runRawSearchDifferential(seed: UInt64, cutTail: Bool) throws -> Int {
        var rng = RNG(state: seed)
        let everyone = (0..<31).map { LiteralPrefilterTests.person($0, &rng) }
        let subject = everyone[0]
        let batch = ScanBatch(jobs: [
            ScanJob(
                jobID: "j", action: .export, identifiers: LiteralPrefilterTests.identifiers(subject), dryRun: false,
                workDir: "")
        ])
        var template = Array((NSTemporaryDirectory() + "dsar-rawdiff-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        let dir = String(cString: p)
        defer { try? FileSystem.removeTree(dir) }
        var total = 0
        // Several files, so that the per-file cap on listed gaps does not hide differences.
        for f in 0..<8 {
            var bytes: [UInt8] = []
            var accounted: [Range<Int64>] = []
            var unparsed = Set<Int>()
            for k in 1...800 {
                let people = rng.chance(0.3) ? [subject] : Array(everyone.dropFirst())
                let line = Array(line(people, &rng).utf8)
                let start = Int64(bytes.count)
                bytes += line
                if !(cutTail && k == 800) { bytes.append(0x0A) }
                if rng.chance(0.4) { accounted.append(start..<Int64(bytes.count)) }
                if rng.chance(0.05) { unparsed.insert(k) }
            }
            let path = dir + "/f\(f).log"
            try FileSystem.writeAtomically(path, bytes, mode: 0o644)
            var ruledOut = 0
            var none = 0
            let fast = try RawVerifier.search(
                path: path, connector: "c", batch: batch, accounted: [0: accounted], unparsedLines: unparsed,
                cutTail: cutTail, outside: .unmatched, options: SourceFile.Options(), prefilter: true,
                linesRuledOut: &ruledOut)
            let slow = try RawVerifier.search(
                path: path, connector: "c", batch: batch, accounted: [0: accounted], unparsedLines: unparsed,
                cutTail: cutTail, outside: .unmatched, options: SourceFile.Options(), prefilter: false,
                linesRuledOut: &none)
            XCTAssertEqual(fast[0] ?? [], slow[0] ?? [], "seed \(seed) file \(f)")
            XCTAssertFalse((slow[0] ?? []).isEmpty, "the generated file must produce gaps")
            XCTAssertEqual(none, 0)
            total += ruledOut
        }
        if subject.phone == nil {
            XCTAssertGreaterThan(total, 2000, "the prefilter must rule most lines out")
        } else {
            XCTAssertEqual(total, 0, "phones have no needle: every line is scanned")
        }
        return total
    }

    func testRawSearchSameGapsWithAndWithoutPrefilter() throws {
        var ruled = 0
        for seed in [1, 2, 3, 4, 5] as [UInt64] {
            ruled += try runRawSearchDifferential(seed: seed, cutTail: seed % 2 == 0)
        }
        XCTAssertGreaterThan(ruled, 0, "some seed's subject has no phone")
    }
}
