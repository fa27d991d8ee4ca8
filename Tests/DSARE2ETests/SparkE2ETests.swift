import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The `spark` kind through the real `dsar` binary and real Spark (`master: local[2]`): a lake made
/// by Spark itself (`Tests/Fixtures/spark/make_lake.py`: partitioned Parquet, JSON lines, CSV, with
/// near misses and its own truth.json), searched with exact recall and precision, expanded into a
/// CSV connector, erased file by file (read back with Spark), killed during the swaps, checked, and
/// killed by `timeout:`. Skipped, naming what is missing, only without Java or pyspark.
final class SparkE2ETests: XCTestCase {
    /// The lake generated once for the class (tests that change it work on a copy).
    nonisolated(unsafe) static var lake: String?
    nonisolated(unsafe) static var truth: [String: Any] = [:]
    /// Every table read back with Spark before any test changed anything.
    nonisolated(unsafe) static var original: [String: Table] = [:]
    nonisolated(unsafe) static var setupError: String?

    struct Table: Equatable {
        var schema: String
        var rows: [String]
    }

    static let tableNames = ["clicks", "sessions", "tickets_csv"]

    static func sparkSubmit() -> String? {
        guard which("java") != nil else { return nil }
        guard
            let r = try? runCommand(
                "/usr/bin/python3", ["-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"]),
            r.status == 0
        else { return nil }
        let p = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + "/bin/spark-submit"
        return FileManager.default.isExecutableFile(atPath: p) ? p : nil
    }

    func requireSpark() throws -> String {
        guard which("java") != nil else { throw XCTSkip("java (a JDK 17) is not installed: Spark cannot run") }
        guard let s = Self.sparkSubmit() else {
            throw XCTSkip("pyspark is not installed for /usr/bin/python3 (pip install pyspark==3.5.7)")
        }
        if Self.lake == nil && Self.setupError == nil {
            do { try Self.makeLake(s) } catch { Self.setupError = "\(error)" }
        }
        if let e = Self.setupError { throw TestFailure("the test lake could not be made: \(e)") }
        return s
    }

    static func makeLake(_ submit: String) throws {
        var template = Array((NSTemporaryDirectory() + "dsar-lake-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        let dir = String(cString: p) + "/lake"
        let r = try runCommand(
            submit, ["--master", "local[2]", repoRoot + "/Tests/Fixtures/spark/make_lake.py", dir, "19"],
            env: ["SPARK_LOCAL_IP": "127.0.0.1"], timeout: 300)
        guard r.status == 0, r.stdout.hasPrefix("OK ") else {
            throw TestFailure("make_lake.py failed (\(r.status)): \(r.stdout) \(r.stderr.suffix(2000))")
        }
        truth =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/truth.json")))
            as? [String: Any] ?? [:]
        original = try readBack(submit, dir)
        lake = dir
    }

    /// Every table of `dir` read with Spark: its schema and its rows as sorted JSON.
    static func readBack(_ submit: String, _ dir: String) throws -> [String: Table] {
        let script = NSTemporaryDirectory() + "dsar-readback-\(UUID().uuidString).py"
        try writeFile(
            script,
            """
            import json, sys
            from pyspark.sql import SparkSession
            spark = SparkSession.builder.appName("readback").getOrCreate()
            spark.sparkContext.setLogLevel("ERROR")
            d = sys.argv[1]
            out = {}
            for name, df in [("clicks", spark.read.parquet(d + "/clicks")), ("sessions", spark.read.json(d + "/sessions")),
                             ("tickets_csv", spark.read.option("header", "true").csv(d + "/tickets_csv"))]:
                out[name] = {"schema": df.schema.simpleString(), "rows": sorted(r for r in df.toJSON().collect())}
            print("READBACK " + json.dumps(out))
            """)
        defer { unlink(script) }
        let r = try runCommand(
            submit, ["--master", "local[2]", script, dir], env: ["SPARK_LOCAL_IP": "127.0.0.1"], timeout: 300)
        guard r.status == 0, let line = r.stdout.split(separator: "\n").first(where: { $0.hasPrefix("READBACK ") })
        else {
            throw TestFailure("the read-back failed (\(r.status)): \(r.stderr.suffix(2000))")
        }
        let obj =
            try JSONSerialization.jsonObject(with: Data(line.dropFirst(9).utf8)) as? [String: [String: Any]] ?? [:]
        return obj.mapValues { Table(schema: $0["schema"] as? String ?? "", rows: $0["rows"] as? [String] ?? []) }
    }

    var subjects: [(email: String, userID: String)] {
        (Self.truth["subjects"] as? [[String: String]] ?? []).map { ($0["email"] ?? "", $0["user_id"] ?? "") }
    }

    func expected(_ table: String, _ email: String) -> Set<Int> {
        Set(((Self.truth["expected"] as? [String: [String: [Int]]])?[table]?[email]) ?? [])
    }

    /// A spool with the `lake` connector over `lake` (and a CSV connector `crm` keyed by user id).
    /// `erasing`: the CSV table without `text:` (a row that only mentions the subject is someone
    /// else's: a lake `delete` does not delete it, so the job would rightly be PARTIAL).
    func setUp(
        _ s: TempSpool, lake: String, timeout: Int = 600, erasing: Bool = false, csv: String = ""
    ) throws
        -> String
    {
        let dir = s.base + "/connectors"
        try writeFile(
            dir + "/lake.yaml",
            """
            name: lake
            type: spark
            master: local[2]
            timeout: \(timeout)
            conf: { spark.sql.shuffle.partitions: "4", spark.ui.enabled: "false" }
            tables:
              clicks: { path: \(lake)/clicks, format: parquet, match: { user_id: user_id, email: email }, erase: delete }
              sessions: { path: \(lake)/sessions, format: json, match: { "actor.email": email }, text: [ note ], erase: redact, redact: [ note, actor.email ] }
              tickets_csv: { path: \(lake)/tickets_csv, format: csv, match: { email: email }\(erasing ? "" : ", text: [ body ]"), erase: delete }
            """)
        if !csv.isEmpty {
            try writeFile(dir + "/data/crm.csv", csv)
            try writeFile(
                dir + "/crm.yaml",
                "name: crm\ntype: csv\npaths: [ data/crm.csv ]\ncolumns: { user_id: user_id }\nerase: retain\nreason: contracts\n"
            )
        }
        try s.initialize()
        return dir
    }

    func copyLake() throws -> String {
        let dst = NSTemporaryDirectory() + "dsar-lakecopy-\(UUID().uuidString)"
        let r = try runCommand("/bin/cp", ["-a", try XCTUnwrap(Self.lake), dst])
        XCTAssertEqual(r.status, 0, r.stderr)
        return dst
    }

    /// The records of connector `lake` in an export bundle, by table.
    func bundleRecords(_ s: TempSpool, _ rec: JobRecord) throws -> [String: [[String: Any]]] {
        let entry = s.root + "/outbox/" + rec.jobID
        let zip = s.base + "/\(rec.jobID).zip"
        let age = try runCommand(
            try XCTUnwrap(which("age")), ["-d", "-i", s.teamKeys + "/age.key", "-o", zip, entry + "/bundle.zip.age"])
        XCTAssertEqual(age.status, 0, age.stderr)
        let out = s.base + "/unzipped-\(rec.jobID)"
        let unzip = try runCommand(try XCTUnwrap(which("unzip")), ["-q", zip, "-d", out])
        XCTAssertEqual(unzip.status, 0, unzip.stderr)
        var result: [String: [[String: Any]]] = [:]
        for t in Self.tableNames {
            let path = out + "/data/lake/\(t).json"
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            result[t] = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] ?? []
        }
        return result
    }

    func testExportHasExactRecallAndPrecisionAndExpandsIntoACSVConnector() throws {
        _ = try requireSpark()
        let s = try TempSpool()
        let subjects = subjects
        XCTAssertEqual(subjects.count, 20)
        // Subject 0 is asked for by e-mail only: her user id comes from the lake and finds her CSV row.
        let dir = try setUp(
            s, lake: try XCTUnwrap(Self.lake), csv: "user_id,plan\n\(subjects[0].userID),gold\nu999999,silver\n")
        for (k, sub) in subjects.enumerated() {
            let ids = k == 0 ? #""email": "\#(sub.email)""# : #""email": "\#(sub.email)", "user_id": "\#(sub.userID)""#
            try s.drop("r\(k).json", #"{"request_id": "r\#(k)", "action": "export", \#(ids)}"#)
        }
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: 900)
        XCTAssertEqual(r.status, 0, r.stderr.suffix(3000).description)
        let records = try s.records()
        XCTAssertEqual(records.count, 20)
        var checked = 0
        for rec in records {
            let k = try XCTUnwrap(Int(try XCTUnwrap(rec.requestID).dropFirst()))
            let sub = subjects[k]
            XCTAssertEqual(rec.status, .completed, "\(sub.email): \(rec.error ?? "")")
            let lake = try XCTUnwrap(rec.connectors.first { $0.name == "lake" })
            XCTAssertEqual(lake.status, "ok", lake.error ?? "")
            let found = try bundleRecords(s, rec)
            var total = 0
            for t in Self.tableNames {
                let want = expected(t, sub.email)
                total += want.count
                let got = found[t] ?? []
                XCTAssertEqual(got.count, want.count, "\(t) of \(sub.email): recall and precision by count")
                // Own rows carry their rid; a mention keeps only its text (GDPR Art. 15(4)).
                let rids = got.compactMap { (($0["record"] as? [String: Any])?["rid"] as? NSNumber)?.intValue }
                XCTAssertTrue(Set(rids).isSubset(of: want), "\(t) of \(sub.email): \(Set(rids).subtracting(want))")
                XCTAssertEqual(rids.count, Set(rids).count, "each row once")
            }
            XCTAssertEqual(lake.records, total, sub.email)
            if k == 0 {
                XCTAssertEqual(
                    rec.connectors.first { $0.name == "crm" }?.records, 1,
                    "her user id, learnt from the lake, finds her CSV row")
            }
            checked += 1
        }
        XCTAssertEqual(checked, 20)
        let journal = String(
            decoding: try JSONSerialization.data(withJSONObject: try s.journalEntries()), as: UTF8.self)
        XCTAssertFalse(journal.contains(subjects[1].email), "no plaintext identifier in the journal")
        XCTAssertTrue(s.allFiles("tmp").filter { $0.contains("spec.json") || $0.contains("dsar_spark_job") }.isEmpty)
    }

    func testDeleteAndRedactChangeExactlyTheSubjectsRowsFileByFile() throws {
        let submit = try requireSpark()
        let lake = try copyLake()
        defer { try? FileSystem.removeTree(lake) }
        let s = try TempSpool()
        // `text: [ body ]` on the CSV table: rows of other people that mention the subject stay,
        // with their body overwritten (never deleted), as the CSV eraser does.
        let dir = try setUp(s, lake: lake, erasing: false)
        let sub = subjects[1]
        let partitionsBefore = try FileSystem.list(lake + "/clicks").filter { !$0.hasPrefix(".") }.sorted()
        try s.drop(
            "d.json",
            #"{"request_id": "d1", "action": "delete", "email": "\#(sub.email)", "user_id": "\#(sub.userID)"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: 900)
        XCTAssertEqual(r.status, 0, r.stderr.suffix(3000).description)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")

        let after = try Self.readBack(submit, lake)
        for t in Self.tableNames {
            let before = try XCTUnwrap(Self.original[t])
            let now = try XCTUnwrap(after[t])
            XCTAssertEqual(now.schema, before.schema, "\(t): schema unchanged")
            func rid(_ row: String) -> Int {
                let v = ((try? JSONSerialization.jsonObject(with: Data(row.utf8))) as? [String: Any])?["rid"]
                return (v as? Int) ?? (v as? String).flatMap { Int($0) } ?? -1
            }
            var gone = expected(t, sub.email)
            if t == "tickets_csv" {
                gone = Set(
                    before.rows.filter {
                        let o = (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
                        return (o?["email"] as? String)?.lowercased() == sub.email
                    }.map(rid))
                XCTAssertFalse(gone.isEmpty, "the subject has CSV rows of her own")
                let mentions = expected(t, sub.email).subtracting(gone)
                XCTAssertFalse(mentions.isEmpty, "other people's tickets mention the subject")
                let old = Dictionary(uniqueKeysWithValues: before.rows.map { (rid($0), $0) })
                XCTAssertEqual(now.rows.count, before.rows.count - gone.count, "\(t): only her own rows are deleted")
                for row in now.rows {
                    let k = rid(row)
                    XCTAssertFalse(gone.contains(k), "rid \(k) was hers and is still there")
                    if mentions.contains(k) {
                        var o = try XCTUnwrap(
                            try JSONSerialization.jsonObject(with: Data(try XCTUnwrap(old[k]).utf8)) as? [String: Any])
                        let n = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(row.utf8)) as? [String: Any])
                        XCTAssertEqual(n["body"] as? String, "[REDACTED]", "rid \(k): the mention is overwritten")
                        o["body"] = "[REDACTED]"
                        XCTAssertEqual(
                            NSDictionary(dictionary: n), NSDictionary(dictionary: o), "rid \(k): all else kept")
                    } else {
                        XCTAssertEqual(row, old[k], "rid \(k) of another person unchanged")
                    }
                }
                continue
            }
            if t == "sessions" {
                // redact: every row stays. Her own rows (actor.email is hers) have the `redact:`
                // columns (note, actor.email) overwritten; rows of other people that mention her in
                // `note` have only that note overwritten. All else is equal.
                XCTAssertEqual(now.rows.count, before.rows.count)
                var own = 0
                var mentioning = 0
                let old = Dictionary(uniqueKeysWithValues: before.rows.map { (rid($0), $0) })
                for row in now.rows {
                    let k = rid(row)
                    if gone.contains(k) {
                        let o = try XCTUnwrap(
                            try JSONSerialization.jsonObject(with: Data(try XCTUnwrap(old[k]).utf8)) as? [String: Any])
                        let n = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(row.utf8)) as? [String: Any])
                        XCTAssertEqual(n["note"] as? String, "[REDACTED]", "rid \(k)")
                        let actor = n["actor"] as? [String: Any] ?? [:]
                        let oldEmail = (o["actor"] as? [String: Any])?["email"] as? String
                        if oldEmail?.lowercased() == sub.email {
                            own += 1
                            XCTAssertEqual(actor["email"] as? String, "[REDACTED]", "rid \(k): her own row")
                        } else {
                            mentioning += 1
                            XCTAssertEqual(
                                actor["email"] as? String, oldEmail, "rid \(k): someone else's address is kept")
                        }
                        XCTAssertEqual(
                            actor["name"] as? String, (o["actor"] as? [String: Any])?["name"] as? String,
                            "rid \(k): a column not listed in redact: is kept")
                    } else {
                        XCTAssertEqual(row, old[k], "rid \(k) of another person unchanged")
                    }
                }
                XCTAssertGreaterThan(own, 0, "she has sessions of her own")
                XCTAssertGreaterThan(mentioning, 0, "other people's sessions mention her")
            } else {
                // delete: exactly the other rows, unchanged.
                XCTAssertEqual(
                    now.rows, before.rows.filter { !gone.contains(rid($0)) }, "\(t): exactly the other rows")
            }
        }
        XCTAssertEqual(
            try FileSystem.list(lake + "/clicks").filter { !$0.hasPrefix(".") }.sorted(), partitionsBefore,
            "partition directories unchanged")
        for d in try FileSystem.list(lake + "/clicks") where d.hasPrefix("dt=") {
            XCTAssertTrue(try FileSystem.list(lake + "/clicks/" + d).filter { $0.hasPrefix(".dsar-stage-") }.isEmpty)
        }
        // The receipt: 0 remaining, each file's after-hash is the file now (sha256sum).
        let manifest =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: s.root + "/outbox/\(rec.jobID)/manifest.json")))
            as? [String: Any] ?? [:]
        let erasure = try XCTUnwrap(manifest["erasure"] as? [String: Any])
        XCTAssertEqual(erasure["remaining"] as? Int, 0)
        let sources = (erasure["sources"] as? [[String: Any]] ?? []).filter { $0["connector"] as? String == "lake" }
        XCTAssertFalse(sources.isEmpty)
        for src in sources where (src["deleted"] as? Int ?? 0) + (src["redacted"] as? Int ?? 0) > 0 {
            let file = try XCTUnwrap(src["file"] as? String)
            let sum = try runCommand("/usr/bin/sha256sum", [file])
            XCTAssertEqual(src["sha256_after"] as? String, String(sum.stdout.prefix(64)), file)
            XCTAssertNotEqual(src["sha256_before"] as? String, src["sha256_after"] as? String, file)
        }
    }

    /// kill -9 right after the first file swap: every file is old or new (Spark reads the whole
    /// lake), and the next run finishes the job and verifies that nothing remains.
    func testKill9DuringTheSwapsLeavesEveryFileOldOrNewAndTheRerunFinishes() throws {
        let submit = try requireSpark()
        let lake = try copyLake()
        defer { try? FileSystem.removeTree(lake) }
        let s = try TempSpool()
        let dir = try setUp(s, lake: lake, erasing: true)
        let sub = subjects[2]
        try s.drop(
            "d.json",
            #"{"request_id": "d2", "action": "delete", "email": "\#(sub.email)", "user_id": "\#(sub.userID)"}"#)
        let crashed = try s.dsar(
            ["run", "--settle", "0", "--connectors", dir], env: ["DSAR_CRASH_AT": "spark.swapped"], timeout: 900)
        XCTAssertTrue(crashed.signaled, "killed at spark.swapped: \(crashed.stderr.suffix(2000))")
        let mid = try Self.readBack(submit, lake)
        for t in Self.tableNames {
            XCTAssertEqual(mid[t]?.schema, Self.original[t]?.schema, "\(t) readable with its schema after the kill")
        }
        let again = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: 900)
        XCTAssertEqual(again.status, 0, again.stderr.suffix(3000).description)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let manifest =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: s.root + "/outbox/\(rec.jobID)/manifest.json")))
            as? [String: Any] ?? [:]
        XCTAssertEqual((manifest["erasure"] as? [String: Any])?["remaining"] as? Int, 0)
        for d in try FileSystem.list(lake + "/clicks") where d.hasPrefix("dt=") {
            XCTAssertEqual(
                try FileSystem.list(lake + "/clicks/" + d).filter { $0.hasPrefix(".dsar-stage-") }, [],
                "stage directories of the killed run are removed")
        }
        let after = try Self.readBack(submit, lake)
        let gone = expected("clicks", sub.email)
        XCTAssertEqual(after["clicks"]?.rows.count, (Self.original["clicks"]?.rows.count ?? 0) - gone.count)
    }

    func testConnectorsCheckReportsAMissingColumnAndCountsFiles() throws {
        _ = try requireSpark()
        let s = try TempSpool()
        let lake = try XCTUnwrap(Self.lake)
        let dir = try setUp(s, lake: lake)
        try writeFile(
            dir + "/lake.yaml",
            """
            name: lake
            type: spark
            master: local[2]
            tables:
              clicks: { path: \(lake)/clicks, format: parquet, match: { user_id: user_id, emial: email }, erase: delete }
              tickets_csv: { path: \(lake)/tickets_csv, format: csv, match: { email: email }, text: [ body ], erase: delete }
            """)
        let r = try s.dsar(["connectors", "check", "--connectors", dir], timeout: 300)
        XCTAssertNotEqual(r.status, 0, r.stdout)
        XCTAssertTrue(
            r.stderr.contains(
                "lake.yaml:5: tables.clicks.match: table clicks (\(lake)/clicks) has no column \"emial\" (did you mean \"email\"?) (columns: "
            ), r.stderr)
        try writeFile(
            dir + "/lake.yaml",
            """
            name: lake
            type: spark
            master: local[2]
            tables:
              clicks: { path: \(lake)/clicks, format: parquet, match: { user_id: user_id, email: email }, erase: delete }
            """)
        let ok = try s.dsar(["connectors", "check", "--connectors", dir], timeout: 300)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let rows = Self.original["clicks"]?.rows.count ?? -1
        XCTAssertTrue(
            ok.stdout.contains("table clicks: parquet \(lake)/clicks: 9 files, \(rows) rows, partitioned by dt"),
            ok.stdout)
    }

    func testATimeoutKillsTheWholeSparkJob() throws {
        _ = try requireSpark()
        let s = try TempSpool()
        let dir = try setUp(s, lake: try XCTUnwrap(Self.lake), timeout: 3)
        try s.drop("e.json", #"{"request_id": "t1", "action": "export", "email": "\#(subjects[0].email)"}"#)
        let sparkTemp = {
            Set((try? FileSystem.list("/tmp")) ?? []).filter { $0.hasPrefix("spark-") || $0.hasPrefix("blockmgr-") }
        }
        let tempBefore = sparkTemp()
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: 300)
        XCTAssertEqual(r.status, 1, "a job that is not COMPLETED: \(r.stderr.suffix(2000))")
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertNotEqual(rec.status, .completed, "a job whose lake was not searched is not COMPLETED")
        let lake = try XCTUnwrap(rec.connectors.first { $0.name == "lake" })
        XCTAssertEqual(lake.status, "failed")
        XCTAssertTrue(
            (lake.error ?? "").contains("spark job of connector lake timed out after 3 s and was killed"),
            lake.error ?? "")
        XCTAssertTrue(
            waitUntil(timeout: 10) {
                ((try? runCommand("/usr/bin/pgrep", ["-f", "\(s.root).*dsar_spark_job"]))?.status ?? 0) == 1
            },
            "no spark process left")
        XCTAssertEqual(
            sparkTemp().subtracting(tempBefore), [],
            "a killed local job leaves no Spark scratch directory in /tmp (spark.local.dir is the job's own)")
        let left = s.allFiles("tmp").filter {
            $0.contains("spec.json") || $0.contains("dsar_spark_job") || $0.contains("/local/")
        }
        XCTAssertTrue(left.isEmpty, "the job's directory in the spool's tmp/ is gone: \(left)")
    }

    /// The program's `DSAR-ERROR:` line is the connector's failure reason (a moved lake is never
    /// "searched, nothing found"), and the job's directory in `tmp/` is gone afterwards.
    func testAMissingTablePathFailsWithTheProgramsReason() throws {
        _ = try requireSpark()
        let s = try TempSpool()
        let dir = try setUp(s, lake: try XCTUnwrap(Self.lake) + "/moved-away")
        try s.drop("e.json", #"{"request_id": "m1", "action": "export", "email": "\#(subjects[0].email)"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: 300)
        XCTAssertEqual(r.status, 1, "a job that is not COMPLETED: \(r.stderr.suffix(2000))")
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertNotEqual(rec.status, .completed)
        let lake = try XCTUnwrap(rec.connectors.first { $0.name == "lake" })
        XCTAssertEqual(lake.status, "failed")
        XCTAssertTrue(
            (lake.error ?? "").contains("spark job of connector lake (scan) failed (exit 1): table clicks: path"),
            lake.error ?? "")
        XCTAssertTrue((lake.error ?? "").contains("does not exist"), lake.error ?? "")
        XCTAssertFalse((lake.error ?? "").contains(subjects[0].email), "no identifier in the reason")
        XCTAssertEqual(s.allFiles("tmp").filter { $0.contains("spark-lake") }, [], "the job's directory is removed")
    }
}
