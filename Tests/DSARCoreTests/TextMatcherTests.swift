import DSARCore
import XCTest

final class TextMatcherTests: XCTestCase {
    let alice = [
        Identifier(type: "email", value: "alice@example.com"), Identifier(type: "user_id", value: "1042"),
        Identifier(type: "phone", value: "+442079460000"), Identifier(type: "ip", value: "203.0.113.7"),
        Identifier(type: "ip", value: "2001:db8::1"),
    ]
    let bob = [Identifier(type: "email", value: "bob@example.org"), Identifier(type: "user_id", value: "7")]

    func matches(_ text: String, types: Set<String>? = nil) -> [(String, String, Int)] {
        let table = IdentifierTable(jobs: [alice, bob])
        let m = TextMatcher(table: table, types: types)
        var out: [TextMatch] = []
        Array(text.utf8).withUnsafeBytes { m.scan($0, into: &out) }
        let bytes = Array(text.utf8)
        return out.flatMap { hit in
            table.hit(hit.entry).jobs.map {
                (table.hit(hit.entry).identifier.type, String(decoding: bytes[hit.range], as: UTF8.self), $0)
            }
        }
    }

    func found(_ text: String, types: Set<String>? = nil) -> [String] {
        matches(text, types: types).map { "\($0.0)=\($0.1)" }
    }

    func testExactTokensOnly() {
        XCTAssertEqual(found("login alice@example.com ok"), ["email=alice@example.com"])
        XCTAssertEqual(found("malice@example.com alice@example.com.evil.org xalice@example.com"), [])
        XCTAssertEqual(found("user 1042 logged in"), ["user_id=1042"])
        XCTAssertEqual(found("user 10420 and 21042 and 1042a and a1042"), [])
        XCTAssertEqual(found("uid=1042&x=7"), ["user_id=1042", "user_id=7"])
        XCTAssertEqual(found("order #1042."), ["user_id=1042"])
    }

    func testEmailCaseAndURLEncoding() {
        XCTAssertEqual(found("From: <ALICE@Example.COM>"), ["email=ALICE@Example.COM"])
        XCTAssertEqual(found("GET /unsubscribe?email=alice%40example.com HTTP/1.1"), ["email=alice%40example.com"])
        XCTAssertEqual(found("mailto:alice@example.com"), ["email=alice@example.com"])
        XCTAssertEqual(found("write to alice@example.com."), ["email=alice@example.com"])
        XCTAssertEqual(found("GET /unsubscribe?email=malice%40example.com"), [])
    }

    func testIPsAndPhones() {
        XCTAssertEqual(found("203.0.113.7 - - [20/Nov/2026] \"GET /\""), ["ip=203.0.113.7"])
        XCTAssertEqual(found("203.0.113.70 and 1203.0.113.7"), [])
        XCTAssertEqual(found("client [2001:DB8:0::1] connected"), ["ip=2001:DB8:0::1"])
        XCTAssertEqual(found("call +44 20 7946 0000 now"), ["phone=+44 20 7946 0000"])
        XCTAssertEqual(found("call 0044 20 7946 0000"), ["phone=0044 20 7946 0000"])
        XCTAssertEqual(found("call +44 20 7946 00001"), [])
    }

    func testTypeFilterAndJobRouting() {
        XCTAssertEqual(found("alice@example.com 1042", types: ["email"]), ["email=alice@example.com"])
        let m = matches("bob@example.org and alice@example.com")
        XCTAssertEqual(m.map(\.2).sorted(), [0, 1])
    }

    func testSharedIdentifierRoutesToBothJobs() {
        let table = IdentifierTable(jobs: [
            [Identifier(type: "user_id", value: "5")], [Identifier(type: "user_id", value: "5")],
        ])
        var out: [TextMatch] = []
        Array("id 5".utf8).withUnsafeBytes { TextMatcher(table: table, types: nil).scan($0, into: &out) }
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(table.hit(out[0].entry).jobs, [0, 1])
    }

    func testFieldMatchingNormalises() {
        let table = IdentifierTable(jobs: [alice])
        var scratch: [UInt8] = []
        func field(_ type: String, _ v: String) -> Int {
            Array(v.utf8).withUnsafeBytes { table.matchField(type: type, $0, scratch: &scratch).count }
        }
        XCTAssertEqual(field("email", "  Alice@EXAMPLE.com "), 1)
        XCTAssertEqual(field("email", "malice@example.com"), 0)
        XCTAssertEqual(field("phone", "+44 (20) 7946-0000"), 1)
        XCTAssertEqual(field("user_id", "1042"), 1)
        XCTAssertEqual(field("user_id", "10420"), 0)
        XCTAssertEqual(field("ip", "2001:0db8:0000::0001"), 1)
    }

    /// "+44 (0)20 …": the "(0)" trunk marker after the country code is not part of the number, on
    /// the request side (IdentifierNormalizer) and the data side (ByteNormalizer) alike.
    func testTheTrunkZeroInParenthesesAfterTheCountryCodeIsDropped() {
        XCTAssertEqual(try IdentifierNormalizer.normalize(type: "phone", "+44 (0)20 7946 0000").get(), "+442079460000")
        XCTAssertEqual(try IdentifierNormalizer.normalize(type: "phone", "0044 (0)20-7946-0000").get(), "+442079460000")
        XCTAssertEqual(try IdentifierNormalizer.normalize(type: "phone", "(0)20 7946 0000").get(), "02079460000")
        let table = IdentifierTable(jobs: [alice])
        var scratch: [UInt8] = []
        func field(_ v: String) -> Int {
            Array(v.utf8).withUnsafeBytes { table.matchField(type: "phone", $0, scratch: &scratch).count }
        }
        XCTAssertEqual(field("+44 (0)20 7946 0000"), 1)
        XCTAssertEqual(field("0044 (0)20 7946 0000"), 1)
        XCTAssertEqual(field("+44 (0)20 7946 0001"), 0)
        XCTAssertEqual(field("(0)20 7946 0000"), 0, "a national number is not the international one")
    }

    // MARK: e-mail recall (RFC 5322 atext, IDN) without near misses

    func emails(_ text: String, _ requested: [String]) -> [String] {
        let table = IdentifierTable(jobs: [requested.map { Identifier(type: "email", value: $0) }])
        var out: [TextMatch] = []
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { TextMatcher(table: table, types: nil).scan($0, into: &out) }
        return out.map { String(decoding: bytes[$0.range], as: UTF8.self) }
    }

    func testEveryAtextCharacterInTheLocalPart() {
        for local in [
            "o'brien", "a!b", "a#b", "a$b", "a&b", "a*b", "a/b", "a=b", "a?b", "a^b", "a`b", "a{b}", "a|b", "a~b",
            "a+b", "a-b", "a_b", "a.b", "A9",
        ] {
            let addr = local + "@x.org"
            XCTAssertEqual(emails("to \(addr) ok", [addr.lowercased()]), [addr], addr)
            XCTAssertEqual(emails("to <\(addr)>", [addr.lowercased()]), [addr], addr)
            // Near misses: a longer local part (an atext letter before it), a longer domain.
            XCTAssertEqual(
                emails("to x\(addr) and \(addr).evil and \(addr)x and \(local)@x.org_old", [addr.lowercased()]), [],
                addr)
        }
    }

    func testApostropheAddress() {
        let o = ["o'brien@x.org"]
        XCTAssertEqual(emails("GET /unsub?email=o'brien%40x.org HTTP/1.1", o), ["o'brien%40x.org"])
        XCTAssertEqual(emails("From: <o'brien@x.org>", o), ["o'brien@x.org"])
        // Single quotes around an address are quoting: a local part may begin after a `'`.
        XCTAssertEqual(emails("to='o'brien@x.org'", o), ["o'brien@x.org"])
        XCTAssertEqual(emails("O'Brien@X.org", o), ["O'Brien@X.org"])
        XCTAssertEqual(
            emails("joe.o'brien@x.org.evil joe.o'brien@x.org xo'brien@x.org o'brien@x.org.evil o'brien@x.org@y", o), [])
        XCTAssertEqual(emails("o'brien%40x.org%2eevil o'brien%40x.org%40y", o), [])
    }

    func testSeparatorsInAccessLogs() {
        let a = ["alice@example.com"]
        XCTAssertEqual(emails("email=alice@example.com", a), ["alice@example.com"])
        XCTAssertEqual(emails("GET /x?user=alice@example.com&x=1 HTTP/1.1", a), ["alice@example.com"])
        XCTAssertEqual(emails("GET /u/alice@example.com/profile", a), ["alice@example.com"])
        XCTAssertEqual(emails("GET /x?next=%2Fu%2Falice%40example.com%26y", a), ["alice%40example.com"])
        XCTAssertEqual(
            emails("a|alice@example.com|b {alice@example.com} “alice@example.com” «alice@example.com»", a),
            Array(repeating: "alice@example.com", count: 4))
        XCTAssertEqual(emails("see...alice@example.com, then", a), ["alice@example.com"])
        // Not separators: `.`, `-`, `_`, `+` and letters (a different local part).
        XCTAssertEqual(
            emails(
                "bob.alice@example.com bob-alice@example.com bob_alice@example.com bob+alice@example.com x@alice@example.com",
                a), [])
        // `bob/alice@example.com` is its own address, found as such; `alice@…` after `/` is found too.
        XCTAssertEqual(emails("bob/alice@example.com", ["bob/alice@example.com"]), ["bob/alice@example.com"])
        XCTAssertEqual(
            emails("bob/alice@example.com", ["bob/alice@example.com", "alice@example.com"]).sorted(),
            ["alice@example.com", "bob/alice@example.com"])
    }

    func testLongAtextRunsAreBounded() {
        let a = ["alice@example.com"]
        let run = String(repeating: "x", count: 300)
        XCTAssertEqual(emails(run + "alice@example.com", a), [])
        XCTAssertEqual(emails(run + "=alice@example.com", a), ["alice@example.com"])
        XCTAssertEqual(emails(String(repeating: "a/", count: 5000) + "alice%40example.com", a), ["alice%40example.com"])
    }

    func testInternationalisedDomains() {
        XCTAssertEqual(emails("to jose@xn--bcher-kva.example", ["jose@bücher.example"]), ["jose@xn--bcher-kva.example"])
        XCTAssertEqual(
            emails("to jose@XN--BCHER-KVA.example.", ["jose@bücher.example"]), ["jose@XN--BCHER-KVA.example"])
        XCTAssertEqual(emails("to “jose@bücher.example”", ["jose@xn--bcher-kva.example"]), ["jose@bücher.example"])
        XCTAssertEqual(emails("to jose@BÜCHER.example", ["jose@xn--bcher-kva.example"]), ["jose@BÜCHER.example"])
        // Decomposed ü (u + U+0308) is the same domain.
        XCTAssertEqual(emails("to jose@bu\u{0308}cher.example", ["jose@bücher.example"]).count, 1)
        XCTAssertEqual(
            emails(
                "jose@xn--bcher-kva.example.evil jose@bücherx.example xjose@bücher.example", ["jose@bücher.example"]),
            [])
        // The identifier reported is the one requested.
        let table = IdentifierTable(jobs: [[Identifier(type: "email", value: "jose@bücher.example")]])
        var out: [TextMatch] = []
        Array("jose@xn--bcher-kva.example".utf8).withUnsafeBytes {
            TextMatcher(table: table, types: nil).scan($0, into: &out)
        }
        XCTAssertEqual(out.map { table.hit($0.entry).identifier.value }, ["jose@bücher.example"])
    }

    func testPunycodeKnownVectors() throws {
        func scalars(_ v: [UInt32]) -> [Unicode.Scalar] { v.map { Unicode.Scalar($0)! } }
        // RFC 3492 section 7.1.
        let vectors: [([UInt32], String)] = [
            // (B) Chinese
            ([0x4ED6, 0x4EEC, 0x4E3A, 0x4EC0, 0x4E48, 0x4E0D, 0x8BF4, 0x4E2D, 0x6587], "ihqwcrb4cv8a8dqg056pqjye"),
            ([0x0033, 0x5E74, 0x0042, 0x7D44, 0x91D1, 0x516B, 0x5148, 0x751F], "3B-ww4c5e180e575a65lsy2b"),  // (L)
            (Array("-> $1.00 <-".unicodeScalars.map(\.value)), "-> $1.00 <--"),  // (S)
            (
                [
                    0x043F, 0x043E, 0x0447, 0x0435, 0x043C, 0x0443, 0x0436, 0x0435, 0x043E, 0x043D, 0x0438, 0x043D,
                    0x0435, 0x0433,
                    0x043E, 0x0432, 0x043E, 0x0440, 0x044F, 0x0442, 0x043F, 0x043E, 0x0440, 0x0443, 0x0441, 0x0441,
                    0x043A, 0x0438,
                ],
                "b1abfaaepdrnnbgefbadotcwatmq2g4l"
            ),  // (I) Russian, lower case
        ]
        for (input, encoded) in vectors {
            XCTAssertEqual(Punycode.encode(scalars(input)), encoded)
            XCTAssertEqual(Punycode.decode(encoded).map { $0.map(\.value) }, input)
        }
        XCTAssertEqual(Punycode.decode("b1abfaaepdrnnbgefbaDotcwatmq2g4l").map { $0.map(\.value) }, vectors[3].0)
        XCTAssertNil(Punycode.decode("bcher-kv!"))
        XCTAssertNil(Punycode.decode("99999999999999999999"))
        XCTAssertEqual(IDNA.toASCII("Bücher.Example"), "xn--bcher-kva.example")
        XCTAssertEqual(IDNA.toUnicode("xn--bcher-kva.example"), "bücher.example")
        XCTAssertEqual(IDNA.toUnicode("xn--zz!.example"), "xn--zz!.example")
    }

    func testPunycodeAgreesWithPythonIDNA() throws {
        let python = ["/usr/bin/python3", "/usr/local/bin/python3", "/root/.pyenv/shims/python3"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let python else { throw XCTSkip("python3 not installed") }
        let words = ["bücher", "münchen", "straße-x", "παράδειγμα", "пример", "例え", "日本語", "café", "naïve-test"]
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", "import sys\nfor w in sys.argv[1:]: print(w.encode('idna').decode())"] + words
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XCTSkip("python idna codec failed") }
        let expected = out.split(separator: "\n").map(String.init)
        XCTAssertEqual(expected.count, words.count)
        for (w, e) in zip(words, expected) where !w.contains("ß") {
            XCTAssertEqual(IDNA.toASCII(w), e, w)
            XCTAssertEqual(IDNA.toUnicode(e), w, e)
        }
    }
}
