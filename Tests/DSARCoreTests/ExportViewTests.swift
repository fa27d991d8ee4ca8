import DSARCore
import Foundation
import XCTest

/// The Art. 15(4) view of found records: what of other people's data the subject's export masks.
final class ExportViewTests: XCTestCase {
    let alice = ExportView.Subject([
        Identifier(type: "email", value: "alice@example.com"), Identifier(type: "phone", value: "+491701234567"),
        Identifier(type: "ip", value: "2001:db8::1"), Identifier(type: "ip", value: "198.51.100.23"),
        Identifier(type: "user_id", value: "1042"),
    ])

    func masked(_ s: String, _ subject: ExportView.Subject? = nil) -> (String, Int) {
        let r = ExportView.mask(Array(s.utf8), subject: subject ?? alice)
        return (String(decoding: r.bytes, as: UTF8.self), r.masked)
    }

    let e = ExportView.emailMarker
    let p = ExportView.phoneMarker
    let ip = ExportView.ipMarker

    func testOtherPeoplesEmailAddressesAreMasked() {
        XCTAssertEqual(masked("write to Bob.Smith+x@mail.example.org, please."), ("write to \(e), please.", 1))
        XCTAssertEqual(masked("<carol@example.net>;dave_1@sub.example.co.uk"), ("<\(e)>;\(e)", 2))
        XCTAssertEqual(masked("mailto:eve@example.com."), ("mailto:\(e).", 1))
    }

    func testOtherPeoplesPhoneNumbersAreMasked() {
        for phone in [
            "+49 151 2345678", "+1 (202) 555-0143", "+44 20 7946 0958", "0151/2345678", "030 1234567", "01512345678",
            "(555) 123-4567", "555-123-4567", "555.123.4567", "0049 30 1234567", "06 12 34 56 78", "06.12.34.56.78",
            "+4915123456789",
        ] {
            XCTAssertEqual(masked("Tel: \(phone), ok"), ("Tel: \(p), ok", 1), phone)
            XCTAssertEqual(masked("Tel.:\(phone)"), ("Tel.:\(p)", 1), phone)
        }
    }

    func testOtherPeoplesIPAddressesAreMasked() {
        for addr in [
            "203.0.113.7", "10.0.0.1", "255.255.255.255", "2001:db8::42", "fe80::1ff:fe23:4567:890a",
            "2001:0db8:0000:0000:0000:ff00:0042:8329", "::ffff:192.0.2.128",
        ] {
            XCTAssertEqual(masked("from \(addr) at"), ("from \(ip) at", 1), addr)
        }
        XCTAssertEqual(masked("[2001:db8::7]:443 and 10.0.0.9:8080."), ("[\(ip)]:443 and \(ip):8080.", 2))
        XCTAssertEqual(masked("client=192.0.2.4,"), ("client=\(ip),", 1))
    }

    func testTheSubjectsOwnIdentifiersStayVisible() {
        let own =
            "ALICE@Example.COM, +49 170 1234567, 0170 1234567, 0049 170 1234567, 2001:DB8:0::1, 198.51.100.23, user 1042"
        XCTAssertEqual(masked(own), (own, 0))
        // Nobody is the subject: everything is masked.
        XCTAssertEqual(
            masked("alice@example.com 0170 1234567 198.51.100.23", ExportView.Subject([])), ("\(e) \(p) \(ip)", 3))
        // Mixed: Alice's stay, Bob's go.
        XCTAssertEqual(
            masked("alice@example.com wrote to bob@example.org from 198.51.100.23 and 198.51.100.24"),
            ("alice@example.com wrote to \(e) from 198.51.100.23 and \(ip)", 2))
    }

    /// What looks like a number but is no phone number or IP address stays as it is.
    func testDatesTimesUUIDsOrderNumbersVersionsAndPricesAreNotMasked() {
        for text in [
            // Dates, times, timestamps
            "2026-01-02", "2026-01-02T10:30:00Z", "2026-01-02T10:30:00+01:00", "2026-01-02 10:30:00", "02.01.2026",
            "01/02/2026", "1/2/2026", "02.01.26", "at 10:30", "10:30:00.123", "10:30:00", "timestamp 1700000000",
            "1700000000123", "20260102103000", "Jan 2, 2026 10:30", "2026-W01",
            // UUIDs, hashes
            "550e8400-e29b-41d4-a716-446655440000", "12345678-1234-1234-1234-123456789012",
            "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            // Order numbers, references, accounts, cards, postcodes
            "order #123456789", "order 0123456789", "Bestellung 0123456789", "ORD-2026-000123", "invoice 2026-000451",
            "ticket 4711", "DE89 3704 0044 0532 0130 00", "4111 1111 1111 1111", "10115 Berlin", "case 123-456-789",
            // Versions, builds
            "version 1.2.3", "v2.10.4.1", "build 10.0.19045.2965", "1.2.3.4.5", "999.1.1.1", "01.02.03.04",
            "macOS 14.4.1",
            // Prices, amounts
            "EUR 1.299,00", "$1,234,567.89", "1 234 567,00 €", "12.50 EUR", "price 0.99", "+3.50", "-1234567.00",
            "1,234,567", "€1.234.567",
            // Other colon-and-hex things
            "MAC 00:1a:2b:3c:4d:5e", "std::vector", "a::b", "dead:beef:cafe", "Note:: see", "x=1:2:3",
            // Not quite e-mail
            "user@localhost", "@handle", "a@b", "foo@.com", "alice@example.c0m",
        ] {
            XCTAssertEqual(masked(text).1, 0, "masked something in \"\(text)\": \(masked(text).0)")
            XCTAssertEqual(masked(text).0, text)
        }
    }

    func testNonASCIIAndEdgesAreKept() {
        XCTAssertEqual(masked("Grüße an bob@example.org – Jürgen"), ("Grüße an \(e) – Jürgen", 1))
        XCTAssertEqual(masked(""), ("", 0))
        XCTAssertEqual(masked("bob@example.org"), (e, 1))
        XCTAssertEqual(masked("+49 151 2345678"), (p, 1))
        XCTAssertEqual(masked("203.0.113.7"), (ip, 1))
    }

    // MARK: - Red-team regressions (F3, F4, F5)

    /// F3: URL-encoded, non-ASCII, quoted and domain-literal addresses are masked whole, from their first byte.
    func testEveryFormOfAnotherPersonsAddressIsMaskedWhole() {
        for addr in [
            "other%40example.org", "bob%40Example.ORG", "o'brien@example.org", "Heidi.O'Neil@example.com",
            "ÜSER@example.org", "oth\u{00AD}her@example.org", "other@bücher.de", "оther@пример.рф", "lena@例え.jp",
            "\"quoted local\"@example.org", "judy@[192.0.2.1]", "judy@[IPv6:2001:db8::9]", "o\u{2019}hara@example.org",
            "bob＠example.org", "user@xn--bcher-kva.de",
        ] {
            XCTAssertEqual(masked("to \(addr) ok"), ("to \(e) ok", 1), addr)
            XCTAssertEqual(masked("<\(addr)>"), ("<\(e)>", 1), addr)
        }
        XCTAssertEqual(masked("GET /account?cc=bob%40example.org&x=1"), ("GET /account?cc=\(e)&x=1", 1))
        XCTAssertEqual(masked("email=malice%40example.com HTTP/1.1"), ("email=\(e) HTTP/1.1", 1))
        // Quotes, brackets and Unicode punctuation around an address are not part of it.
        XCTAssertEqual(
            masked("'bob@example.org', “carol@example.net”, «dave@example.net»"), ("'\(e)', “\(e)”, «\(e)»", 3))
        XCTAssertEqual(masked("Mail:\u{00A0}bob@example.org。次"), ("Mail:\u{00A0}\(e)。次", 1))
        XCTAssertEqual(masked("bob@example.org…"), ("\(e)…", 1))
        XCTAssertEqual(masked("Grüße an jürgen@example.org – Jürgen"), ("Grüße an \(e) – Jürgen", 1))
        // The subject's own address in any of these spellings stays visible.
        for own in ["alice%40example.com", "ALICE%40EXAMPLE.COM", "alice＠example.com"] {
            XCTAssertEqual(masked("GET /?u=\(own)"), ("GET /?u=\(own)", 0), own)
        }
        let unicode = ExportView.Subject([Identifier(type: "email", value: "jürgen@bücher.de")])
        XCTAssertEqual(
            masked("from JÜRGEN@BÜCHER.DE and üser@bücher.de", unicode), ("from JÜRGEN@BÜCHER.DE and \(e)", 1))
        // Still not addresses.
        for text in ["user@localhost", "a@b", "foo@.com", "alice@example.c0m", "100%40 of it", "@[v1]", "x@[]"] {
            XCTAssertEqual(masked(text).1, 0, "masked something in \"\(text)\": \(masked(text).0)")
        }
    }

    /// F3: in a JSON-lines record, strings at any depth of a masked field are masked.
    func testNestedObjectsAndArraysOfAMaskedFieldAreMasked() {
        let r = FoundRecord(
            table: "ev", source: "/logs/ev.jsonl", line: 1,
            fields: [
                JSONMember(key: "user", value: .string("alice@example.com")),
                JSONMember(
                    key: "nested",
                    value: .object([
                        JSONMember(key: "other", value: .string("carol@example.net")),
                        JSONMember(
                            key: "deeper", value: .object([JSONMember(key: "ip", value: .string("203.0.113.9"))])),
                        JSONMember(key: "dave@example.net", value: .number("1")),
                    ])),
                JSONMember(
                    key: "list",
                    value: .array([.string("dave@example.net"), .array([.string("+44 20 7946 0958")]), .number("3")])),
                JSONMember(key: "msg", value: .string("hi alice@example.com")),
            ], matchedOn: ["email"], textFields: ["nested", "list", "msg"])
        let v = ExportView.view(r, subject: ids)
        XCTAssertEqual(v.masked, 5)
        XCTAssertEqual(
            v.fields[1].value,
            .object([
                JSONMember(key: "other", value: .string(e)),
                JSONMember(key: "deeper", value: .object([JSONMember(key: "ip", value: .string(ip))])),
                JSONMember(key: e, value: .number("1")),
            ]))
        XCTAssertEqual(v.fields[2].value, .array([.string(e), .array([.string(p)]), .number("3")]))
        XCTAssertEqual(v.fields[3].value, .string("hi alice@example.com"))
        XCTAssertEqual(v.fields[0].value, .string("alice@example.com"))
        // The log connector names the nested members as text fields (not only the top-level strings).
        var out: [String] = []
        LogConnector.textFields(r.fields, except: ["user"], into: &out)
        XCTAssertEqual(out, ["nested", "list", "msg"])
    }

    /// F4: a national number is the subject's only when it is their number without the country code.
    func testANationalNumberIsTheSubjectsOnlyWithTheRightCountryCode() {
        for other in [
            "(070) 1234567", "0701234567", "070 1234567", "+44 170 1234567", "0044 170 1234567", "+4917012345678",
        ] {
            XCTAssertEqual(masked("Tel: \(other) end"), ("Tel: \(p) end", 1), other)
        }
        for own in ["(0170) 1234567", "0170/1234567", "+49 (0)170 1234567", "0049 (0)170 1234567", "+49(0)1701234567"] {
            XCTAssertEqual(masked("Tel: \(own) end"), ("Tel: \(own) end", 0), own)
        }
        // Country codes of one, two and three digits (E.164).
        let us = ExportView.Subject([Identifier(type: "phone", value: "+12025550143")])
        XCTAssertEqual(masked("(202) 555-0143 or 202-555-0143", us), ("(202) 555-0143 or 202-555-0143", 0))
        XCTAssertEqual(masked("call (303) 555-0143 or +1 202 555 0144", us), ("call \(p) or \(p)", 2))
        let ie = ExportView.Subject([Identifier(type: "phone", value: "+353871234567")])
        XCTAssertEqual(masked("087 123 4567, +353 87 123 4567", ie), ("087 123 4567, +353 87 123 4567", 0))
        XCTAssertEqual(masked("0387 123 4567", ie), ("\(p)", 1))
        let it = ExportView.Subject([Identifier(type: "phone", value: "+390612345678")])
        XCTAssertEqual(masked("06 1234 5678", it), ("06 1234 5678", 0))
        XCTAssertEqual(ExportView.countryCodeLength(Array("12025550143".utf8)), 1)
        XCTAssertEqual(ExportView.countryCodeLength(Array("79161234567".utf8)), 1)
        XCTAssertEqual(ExportView.countryCodeLength(Array("491701234567".utf8)), 2)
        XCTAssertEqual(ExportView.countryCodeLength(Array("35312345678".utf8)), 3)
        XCTAssertEqual(ExportView.countryCodeLength(Array("8801712345678".utf8)), 3)
        // A subject who gave a national number: international spellings cannot be compared, so they are masked.
        let national = ExportView.Subject([Identifier(type: "phone", value: "01701234567")])
        XCTAssertEqual(masked("0170 1234567 / +44 1701 234567", national), ("0170 1234567 / \(p)", 1))
    }

    /// F5: the subject's own number with the `(0)` trunk marker and their IPv4 in IPv4-mapped form stay visible.
    func testTheSubjectsOwnSpellingsAreNotMaskedOrCounted() {
        let own = "OWN: +49 (0)170 1234567, ::ffff:198.51.100.23, ::FFFF:198.51.100.23"
        XCTAssertEqual(masked(own), (own, 0))
        XCTAssertEqual(masked("::ffff:198.51.100.24"), (ip, 1))
        // Given with the `(0)` in the request (normalised to `+4901701234567`): the same number.
        let trunk = ExportView.Subject([Identifier(type: "phone", value: "+4901701234567")])
        let spellings = "+49 170 1234567, 0170 1234567, +49 (0)170 1234567"
        XCTAssertEqual(masked(spellings, trunk), (spellings, 0))
        XCTAssertEqual(masked("+49 171 1234567", trunk), (p, 1))
        let rome = ExportView.Subject([Identifier(type: "phone", value: "+390612345678")])
        XCTAssertEqual(masked("+39 06 1234 5678, +39 612345678", rome), ("+39 06 1234 5678, \(p)", 1))
        let mapped = ExportView.Subject([Identifier(type: "ip", value: "::ffff:203.0.113.7")])
        XCTAssertEqual(masked("from 203.0.113.7 and 203.0.113.8", mapped), ("from 203.0.113.7 and \(ip)", 1))
    }

    // MARK: - Records

    func record(mention: Bool, textFields: [String]) -> FoundRecord {
        FoundRecord(
            table: "tickets", source: "/data/tickets.csv", line: 3,
            fields: [
                JSONMember(key: "id", value: .string("7")),
                JSONMember(key: "author_email", value: .string("bob@example.org")),
                JSONMember(key: "author_phone", value: .string("+44 20 7946 0958")),
                JSONMember(
                    key: "body",
                    value: .string("alice@example.com called; cc carol@example.net, 203.0.113.9")),
                JSONMember(key: "internal_note", value: .string("VIP, bob@example.org")),
            ], matchedOn: ["email in body"], mention: mention, textFields: textFields)
    }

    let ids = [Identifier(type: "email", value: "alice@example.com")]

    func testAMentionKeepsOnlyItsTextFieldsMasked() {
        let v = ExportView.view(record(mention: true, textFields: ["body"]), subject: ids)
        XCTAssertTrue(v.mention)
        XCTAssertEqual(v.fields.map(\.key), ["body"])
        XCTAssertEqual(v.fields.first?.value, .string("alice@example.com called; cc \(e), \(ip)"))
        XCTAssertEqual(v.masked, 2)
    }

    func testAStructuredRecordIsExportedWhole() {
        let r = record(mention: false, textFields: [])
        XCTAssertFalse(ExportView.needsView(r))
        let v = ExportView.view(r, subject: ids)
        XCTAssertEqual(v.fields, r.fields)
        XCTAssertEqual(v.masked, 0)
        XCTAssertFalse(v.mention)
        // A log record: every field kept, only the text fields masked.
        let log = ExportView.view(record(mention: false, textFields: ["internal_note"]), subject: ids)
        XCTAssertEqual(log.fields.count, 5)
        XCTAssertEqual(log.fields[4].value, .string("VIP, \(e)"))
        XCTAssertEqual(log.fields[1].value, .string("bob@example.org"))
        XCTAssertEqual(log.masked, 1)
    }

    func testStatsTotalMentionsAndMasks() {
        let o = ConnectorOutcome(
            name: "tickets", metadata: SourceMetadata(), status: .ok,
            findings: ConnectorFindings(found: [
                record(mention: true, textFields: ["body"]), record(mention: false, textFields: []),
                record(mention: true, textFields: ["body", "internal_note"]),
            ]))
        XCTAssertEqual(ExportView.stats(o, subject: ids), ExportView.Stats(mentions: 2, masked: 5))
    }

    // MARK: - Findings files

    func testFindingsFilesHoldTheViewAndTheirSizesAgree() throws {
        var own = record(mention: false, textFields: [])
        own.raw = Array("7,alice@example.com,+49 170 1234567,hi,ok\r\n".utf8)
        own.rawHeader = Array("id,author_email,author_phone,body,internal_note\r\n".utf8)
        var mention = record(mention: true, textFields: ["body"])
        mention.raw = Array("8,bob@example.org,+44 20 7946 0958,x,y\r\n".utf8)
        mention.rawHeader = own.rawHeader
        // A log line with many short addresses: the masked view is longer than the record.
        let ips = (1...200).map { "10.0.0.\($0)" }.joined(separator: " ")
        let log = FoundRecord(
            table: "web", source: "/logs/web.log", line: 1, fields: [JSONMember(key: "line", value: .string(ips))],
            matchedOn: ["email"], textFields: FoundRecord.lineField)
        let o = ConnectorOutcome(
            name: "src", metadata: SourceMetadata(), status: .ok,
            findings: ConnectorFindings(found: [own, mention, log]))
        let files = FindingsWriter.plan([o], subject: ids)
        XCTAssertEqual(files.map(\.name), ["data/src/tickets.csv", "data/src/tickets.json", "data/src/web.json"])
        for f in files {
            var bytes: [UInt8] = []
            try FindingsWriter.produce(f, [o]) { bytes += $0 }
            XCTAssertEqual(try FindingsWriter.size(f, [o]), Int64(bytes.count), f.name)
            XCTAssertGreaterThanOrEqual(FindingsWriter.estimatedSize(f, [o]), bytes.count, f.name)
            let text = String(decoding: bytes, as: UTF8.self)
            if f.name.hasSuffix(".csv") {
                XCTAssertFalse(text.contains("bob@example.org"), f.name)
                XCTAssertEqual(text, String(decoding: own.rawHeader! + own.raw!, as: UTF8.self))
            }
            if f.name == "data/src/tickets.json" {
                XCTAssertEqual(text.components(separatedBy: "7946").count, 2, "only in the structured record")
                XCTAssertTrue(text.contains(#""mention": true"#), text)
            }
            if f.name == "data/src/web.json" {
                XCTAssertFalse(text.contains("10.0.0."))
                XCTAssertTrue(text.contains(#""masked": 200"#), text)
            }
        }
        XCTAssertEqual(ExportView.stats(o, subject: ids), ExportView.Stats(mentions: 1, masked: 202))
    }

    /// F10: the subject's data/*.json name the source file (or database) only: no server path,
    /// host, port or user; the sizes still agree with what is produced.
    func testFindingsFilesNameTheSourceByItsBaseNameOnly() throws {
        let cases = [
            ("/srv/dumps/secret-path/shop-2026-11-28.sql", "shop-2026-11-28.sql"),
            ("sqlite:/tmp/rt/n/connectors/sample-data/app.db", "app.db"),
            ("postgres://dsar@db.internal:5432/shop", "shop"),
            ("mysql://[fd00::1]:3306/crm", "crm"),
            ("mysql://localhost/crm?socket=/run/mysqld/mysqld.sock", "crm"),
            ("host=db.internal user=dsar dbname=billing", "billing"),
            ("exec:crm-plugin", "exec:crm-plugin"),
            ("access.log.1.gz", "access.log.1.gz"),
        ]
        for (source, want) in cases { XCTAssertEqual(FindingsWriter.subjectSource(source), want, source) }
        let found = cases.enumerated().map { k, c in
            FoundRecord(
                table: "t", source: c.0, line: k,
                fields: [JSONMember(key: "email", value: .string("alice@example.com"))],
                matchedOn: ["email"])
        }
        let o = ConnectorOutcome(
            name: "src", metadata: SourceMetadata(), status: .ok, findings: ConnectorFindings(found: found))
        let f = try XCTUnwrap(FindingsWriter.plan([o], subject: ids).first)
        var bytes: [UInt8] = []
        try FindingsWriter.produce(f, [o]) { bytes += $0 }
        XCTAssertEqual(try FindingsWriter.size(f, [o]), Int64(bytes.count))
        XCTAssertGreaterThanOrEqual(FindingsWriter.estimatedSize(f, [o]), bytes.count)
        let items = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bytes)) as? [[String: Any]])
        XCTAssertEqual(items.map { $0["source"] as? String ?? "-" }, cases.map(\.1))
        let text = String(decoding: bytes, as: UTF8.self)
        for leak in ["/srv", "/tmp", "db.internal", "dsar@", "5432", "mysqld.sock", "fd00"] {
            XCTAssertFalse(text.contains(leak), leak)
        }
    }
}

/// `XCTAssertEqual` for a masked text and its count (tuples are not `Equatable`).
func XCTAssertEqual(
    _ a: (String, Int), _ b: (String, Int), _ message: @autoclosure () -> String = "", file: StaticString = #filePath,
    line: UInt = #line
) {
    XCTAssertTrue(a == b, "\(a) is not \(b) \(message())", file: file, line: line)
}
