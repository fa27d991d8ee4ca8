import DSARTestSupport
import Foundation
import XCTest

@testable import DSARCore

/// Parsing `type: spark` connector files, and the spec's candidate keys and text needles built from
/// a batch (no Spark needed).
final class SparkConfigTests: XCTestCase {
    private func parse(_ yaml: String) throws -> (SparkSettings?, [String], String) {
        let dir = try PrivateServerTools.makeTempDir("dsar-sparkcfg")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/lake.yaml"
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        let (c, problems) = try ConnectorCatalog.parse(
            file: file, checks: .init(knownTypes: ConnectorCatalog.builtinTypes))
        let shown = problems.map { $0.description.replacingOccurrences(of: dir + "/", with: "") }
        return (c?.settings as? SparkSettings, shown, dir)
    }

    func testParsesTheIssuesExampleWithDefaultsAndRules() throws {
        let (s, problems, dir) = try parse(
            """
            name: events-lake
            type: spark
            master: local[2]
            spark_submit: /opt/spark/bin/spark-submit
            conf: { spark.executor.memory: 4g, spark.sql.shuffle.partitions: "8" }
            timeout: 600
            tables:
              clicks:   { path: /lake/clicks, format: parquet, match: { user_id: user_id, email: email }, erase: delete }
              sessions: { path: lake/sessions, format: json, match: { "actor.email": email }, text: [ note ], erase: redact, redact: [ note ] }
              tickets:  { path: "file:///lake/t", format: csv, options: { sep: ";" }, text: [ body ], erase: retain, reason: contracts }
            """)
        XCTAssertEqual(problems, [])
        let c = try XCTUnwrap(s)
        XCTAssertEqual(c.master, "local[2]")
        XCTAssertEqual(c.sparkSubmit, "/opt/spark/bin/spark-submit")
        XCTAssertEqual(
            c.conf.map { "\($0.0)=\($0.1)" }, ["spark.executor.memory=4g", "spark.sql.shuffle.partitions=8"])
        XCTAssertEqual(c.tableOrder, ["clicks", "sessions", "tickets"])
        let clicks = try XCTUnwrap(c.tables["clicks"])
        XCTAssertEqual(clicks.format, .parquet)
        XCTAssertEqual(clicks.path, "/lake/clicks")
        XCTAssertEqual(clicks.rules.match.map(\.column), ["user_id", "email"])
        XCTAssertEqual(clicks.rules.erase, .delete)
        let sessions = try XCTUnwrap(c.tables["sessions"])
        XCTAssertEqual(sessions.path, dir + "/lake/sessions", "a relative path is relative to the YAML file")
        XCTAssertEqual(sessions.rules.match, [FieldRule(column: "actor.email", type: "email", expand: true)])
        XCTAssertEqual(sessions.rules.redact, ["note"])
        let tickets = try XCTUnwrap(c.tables["tickets"])
        XCTAssertEqual(tickets.path, "file:///lake/t", "a URI is kept as it is")
        XCTAssertEqual(tickets.options.map { $0.0 + "=" + $0.1 }, ["sep=;"])
        XCTAssertEqual(tickets.rules.reason, "contracts")

        let (d, p2, _) = try parse("type: spark\ntables:\n  t: { path: /x, format: csv, match: { id: user_id } }\n")
        XCTAssertEqual(p2, [])
        XCTAssertEqual(d?.master, "local[*]", "default master")
        XCTAssertNil(d?.sparkSubmit, "found when the job runs")
        XCTAssertNil(d?.python)
    }

    func testProblemsNameFileLineKeyAndWhatWasExpected() throws {
        let (s, problems, _) = try parse(
            """
            type: spark
            master: ""
            conf: { "bad key": x }
            python: ""
            tables:
              a: { format: orc, match: { email: email } }
              b: { path: /lake/b, format: parquet, erase: redact, match: { email: email } }
              c: { path: /lake/c, format: parquet, match: { email: emial } }
              d: { path: /lake/d, format: json, match: { id: user_id }, colums: [ x ] }
              e: { path: /lake/e, format: parquet, options: { header: "true" }, match: { id: user_id } }
              f: { path: /lake/f, format: csv }
              g: { path: /lake/g, format: csv, match: { id: user_id }, erase: retain }
            """)
        XCTAssertNil(s)
        func has(_ prefix: String, _ contains: String = "") {
            XCTAssertTrue(
                problems.contains { $0.hasPrefix(prefix) && (contains.isEmpty || $0.contains(contains)) },
                "\(prefix)…\(contains) in \(problems)")
        }
        has("lake.yaml:2: master: is empty")
        has("lake.yaml:3: conf.bad key: is not a Spark property name")
        has("lake.yaml:4: python: is empty")
        has("lake.yaml:6: tables.a: tables.a.path is missing")
        has("lake.yaml:6: tables.a.format: \"orc\" is not a lake format; expected parquet, csv or json")
        has("lake.yaml:7: tables.b.erase: redact needs `redact:` listing the columns")
        has("lake.yaml:8: tables.c.match.email: \"emial\" is not a known identifier type (did you mean \"email\"?)")
        has("lake.yaml:9: tables.d.colums: unknown key")
        has("lake.yaml:10: tables.e.options: header is a csv option")
        has("lake.yaml:11: tables.f", "give `match:`")
        has("lake.yaml:12: tables.g.erase: retain needs a `reason:`")
    }

    func testLocalPathsOfSparkFileNames() {
        XCTAssertEqual(
            SparkTable.localPath("file:/lake/clicks/dt=2026-11-12/part-0.parquet"),
            "/lake/clicks/dt=2026-11-12/part-0.parquet")
        XCTAssertEqual(SparkTable.localPath("file:///lake/a%20b/x.json"), "/lake/a b/x.json")
        XCTAssertEqual(SparkTable.localPath("/lake/x.csv"), "/lake/x.csv")
        XCTAssertEqual(SparkTable.localPath("file://localhost/lake/x"), "/lake/x")
        XCTAssertNil(SparkTable.localPath("file://otherhost/lake/x"))
        XCTAssertNil(SparkTable.localPath("hdfs://nn:8020/lake/x"))
        XCTAssertNil(SparkTable.localPath("s3a://bucket/lake/x"))
    }

    func testKeysAreEveryFormAsTheProgramComparesThem() {
        let ids = [
            Identifier(type: "email", value: "alice@example.com"), Identifier(type: "email", value: "jürgen@bücher.de"),
            Identifier(type: "user_id", value: "u1042"), Identifier(type: "phone", value: "+4917012345678"),
            Identifier(type: "phone", value: "+1 23"), Identifier(type: "ip", value: "10.0.0.1"),
            Identifier(type: "ip", value: "2001:db8::0042:1"), Identifier(type: "ip", value: "::"),
            Identifier(type: "customer_no", value: "K-77"),
        ]
        let keys = SparkJob.keys(ids).map { "\($0.kind):\($0.value)" }
        XCTAssertEqual(
            keys,
            [
                "digits7:123", "digits7:2345678", "exact:K-77", "exact:u1042", "ipv4:10.0.0.1", "ipv6group:2001",
                "lower:alice@example.com", "lower:jürgen@bücher.de", "lower:jürgen@xn--bcher-kva.de",
            ])
        XCTAssertEqual(SparkJob.keyKinds(type: "ip"), ["ipv4", "ipv6group"])
        XCTAssertEqual(SparkJob.keyKinds(type: "email"), ["lower"])
        XCTAssertEqual(SparkJob.keyKinds(type: "phone"), ["digits7"])
        XCTAssertEqual(SparkJob.keyKinds(type: "customer_no"), ["exact"])
    }

    func testNeedlesAreWhatEverySpellingTheMatcherAcceptsContains() {
        let ids = [
            Identifier(type: "email", value: "a.lice+tag@example.com"),
            Identifier(type: "email", value: "bob@example.org"),
            Identifier(type: "email", value: "ü@bücher.de"), Identifier(type: "user_id", value: "u-1042-abc"),
            Identifier(type: "phone", value: "+4917012345678"), Identifier(type: "ip", value: "fe80::1"),
        ]
        let needles = SparkJob.needles(ids).map { "\($0.kind):\($0.value)" }
        XCTAssertEqual(
            needles, ["digits7:2345678", "ipv6group:fe80", "run:1042", "run:a", "run:bob", "run:de"],
            "first run of the local part; longest run of a user id; the top-level domain when the local part has none")
    }

    func testTheSpecFollowsTheContract() throws {
        var s = SparkSettings()
        var t = SparkTable(name: "tickets")
        t.path = "/lake/t"
        t.format = .csv
        t.rules.match = [FieldRule(column: "ip", type: "ip", expand: true)]
        t.rules.text = ["body"]
        s.tables = ["tickets": t]
        s.tableOrder = ["tickets"]
        let job = SparkJob(connector: "lake", settings: s, timeout: 10, placeholder: "[X]")
        let ids = [Identifier(type: "email", value: "alice@example.com")]
        let scan = JSONWriter(sortKeys: true).encode(job.spec(mode: .scan, tables: [t], identifiers: ids, output: "/o"))
        let text = String(decoding: scan, as: UTF8.self)
        XCTAssertTrue(text.contains(#""app_name":"dsar-lake""#), text)
        XCTAssertTrue(text.contains(#""options":{"header":"true"}"#), "csv header defaults to true: \(text)")
        XCTAssertTrue(
            text.contains(
                #""match":[{"column":"ip","key":"ipv4","type":"ip"},{"column":"ip","key":"ipv6group","type":"ip"}]"#),
            text)
        XCTAssertTrue(text.contains(#""keys":[{"kind":"lower","value":"alice@example.com"}]"#), text)
        XCTAssertTrue(text.contains(#""needles":[{"kind":"run","value":"alice"}]"#), text)
        XCTAssertTrue(text.contains(#""placeholder":"[X]""#), text)
        let check = String(
            decoding: JSONWriter().encode(job.spec(mode: .check, tables: [t], identifiers: ids, output: "/o")),
            as: UTF8.self)
        XCTAssertFalse(check.contains("alice"), "a check carries no identifier: \(check)")
    }
}
