import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The audit journal through the real binary: tampering of every kind is caught by
/// `dsar audit verify` at the right segment and line, checkpoints verify with `ssh-keygen` alone,
/// `kill -9` mid-append never leaves a journal that fails verification, the journal never holds an
/// identifier, pseudonyms are stable per spool, and `dsar events` shows a job's history.
final class JournalE2ETests: XCTestCase {
    // MARK: - fixtures

    /// Connectors in `<base>/connectors`: accounts.csv knows email → user_id and phone (identity
    /// expansion); the event log knows user_id and ip.
    static func makeConnectors(_ s: TempSpool) throws -> String {
        let dir = s.base + "/connectors"
        try writeFile(
            dir + "/data/accounts.csv",
            """
            email,user_id,phone,name
            alice@example.com,904217,+49 30 5550172,Alice
            carol@example.org,733105,+1 415 555 0199,Carol
            malice@example.com,9042170,+49 30 5550000,Mal

            """)
        try writeFile(
            dir + "/data/events.jsonl",
            """
            {"user_id": "904217", "ip": "198.51.100.23", "event": "login"}
            {"user_id": "733105", "ip": "203.0.113.77", "event": "login"}
            {"user_id": 904217, "event": "logout"}
            {"user_id": "9042170", "event": "login"}

            """)
        try writeFile(
            dir + "/accounts.yaml",
            """
            name: accounts
            type: csv
            paths: [ data/accounts.csv ]
            category: account
            columns: { email: email, user_id: user_id, phone: phone }

            """)
        try writeFile(
            dir + "/events.yaml",
            """
            name: events
            type: log
            format: jsonl
            paths: [ data/events.jsonl ]
            fields: { user_id: user_id, ip: ip }

            """)
        return dir
    }

    /// A spool whose journal comes from two real `dsar run`s with connectors (3 then 2 export
    /// requests, one of them growing through identity expansion): job, connector, derivation,
    /// bundle and checkpoint entries, two signed checkpoints, five published manifests.
    static func realJournal() throws -> (spool: TempSpool, connectors: String) {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try s.initialize()
        try s.drop("a.json", #"{"request_id": "J-1", "action": "export", "email": "Alice@Example.com"}"#)
        try s.drop("b.json", #"{"request_id": "J-2", "action": "export", "user_id": "733105"}"#)
        try s.drop("c.json", #"{"request_id": "J-3", "action": "export", "ip": "198.51.100.23"}"#)
        let r1 = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        guard r1.status == 0 else { throw TestFailure("first run exited \(r1.status): \(r1.stdout) \(r1.stderr)") }
        try s.drop("d.json", #"{"request_id": "J-4", "action": "export", "phone": "+49 30 5550172"}"#)
        try s.drop("e.json", #"{"request_id": "J-5", "action": "export", "email": "nobody@example.net"}"#)
        let r2 = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        guard r2.status == 0 else { throw TestFailure("second run exited \(r2.status): \(r2.stdout) \(r2.stderr)") }
        guard r2.stdout.contains("journal: signed checkpoint at seq ") else {
            throw TestFailure("no checkpoint line: \(r2.stdout)")
        }
        return (s, dir)
    }

    // MARK: - 1. tamper matrix

    func testTamperMatrixOnARealJournalIsReportedAtTheRightSegmentAndLine() throws {
        let (s, _) = try Self.realJournal()
        let pristine = s.root + "/journal"
        let segs = try journalSegments(pristine)
        XCTAssertEqual(segs.count, 1, "the fixture fits one segment")
        let seg = try XCTUnwrap(segs.first)
        let lines = try readLines(pristine + "/" + seg)
        let n = lines.count
        let entries = try lines.map { try JournalEntry.parse($0) }
        XCTAssertEqual(entries.map(\.seq), Array(1...n))
        let types = Set(entries.map(\.type))
        for t in [
            "job.claimed", "request.received", "job.started", "connector.started", "connector.finished",
            "identifiers.derived", "bundle.sealed", "job.published", "job.finished", "checkpoint",
        ] {
            XCTAssertTrue(types.contains(t), "the real journal has no \(t) entry: \(types.sorted())")
        }
        let checkpoints = entries.indices.filter { entries[$0].type == "checkpoint" }
        XCTAssertEqual(checkpoints.count, 2)
        let manifests = s.list("outbox").map { s.root + "/outbox/\($0)/manifest.json" }
        XCTAssertEqual(manifests.count, 5)

        // A scratch spool holding the spool's keys and, per case, a fresh copy of the pristine journal.
        let scratch = s.base + "/scratch"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        XCTAssertEqual(try runCommand("/bin/cp", ["-a", s.root + "/keys", scratch + "/keys"]).status, 0)
        let jdir = scratch + "/journal"
        let segPath = jdir + "/" + seg
        func fresh() throws {
            try FileSystem.removeTree(jdir)
            let r = try runCommand("/bin/cp", ["-a", pristine, jdir])
            guard r.status == 0 else { throw TestFailure("cp: \(r.stderr)") }
        }
        func verify(_ extra: [String] = []) throws -> CommandResult {
            try runCommand(dsarBinary, ["audit", "verify", "--spool", scratch] + extra)
        }
        func expect(
            _ what: String, at lineNo: Int, _ message: String, _ extra: [String] = [], file: StaticString = #filePath,
            line tl: UInt = #line
        ) throws {
            let r = try verify(extra)
            XCTAssertEqual(
                r.status, 1, "\(what): dsar audit verify must fail; stdout: \(r.stdout)", file: file, line: tl)
            XCTAssertFalse(r.stdout.contains("OK:"), "\(what): \(r.stdout)", file: file, line: tl)
            let prefix = "dsar: journal/\(seg):\(lineNo): "
            XCTAssertTrue(
                r.stderr.contains(prefix), "\(what): expected the report at \(prefix) but got: \(r.stderr)", file: file,
                line: tl)
            XCTAssertTrue(
                r.stderr.contains(message), "\(what): expected \"\(message)\" in: \(r.stderr)", file: file, line: tl)
        }

        // The pristine journal passes, with both checkpoints and (given) every manifest head.
        try fresh()
        let ok = try verify()
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.hasPrefix("OK: \(n) entries in 1 segment, 2 signed checkpoints, "), ok.stdout)
        XCTAssertEqual(ok.stdout.split(separator: "\n").count, 1, ok.stdout)
        let okM = try verify(manifests.flatMap { ["--manifest", $0] })
        XCTAssertEqual(okM.status, 0, okM.stderr)
        XCTAssertTrue(okM.stdout.contains("; 5 manifest heads found in the chain"), okM.stdout)

        // One byte changed in each member of a middle entry (a connector.finished line, which has
        // every member filled): the entry's own hash no longer matches, reported at that very line.
        let mid = try XCTUnwrap((n / 2..<n).first { entries[$0].type == "connector.finished" })
        let midLine = mid + 1
        let fields: [(name: String, key: String, inDetails: Bool)] = [
            ("seq", "seq", false), ("time", "time", false), ("job_id", "job_id", false), ("subject", "subject", false),
            ("type", "type", false), ("details.connector", "connector", true), ("prev", "prev", false),
            ("hash", "hash", false),
        ]
        for f in fields {
            try fresh()
            var l = lines
            let at = try XCTUnwrap(valueOffset(l[mid], key: f.key, inDetails: f.inDetails), f.name)
            let before = l[mid][at]
            l[mid][at] = changedByte(before)
            XCTAssertNotEqual(l[mid][at], before)
            try writeLines(segPath, l)
            try expect("one byte of \(f.name) changed", at: midLine, "hash mismatch")
        }

        // A line deleted: the line now in its place carries the next seq.
        try fresh()
        var deleted = lines
        deleted.remove(at: mid)
        try writeLines(segPath, deleted)
        try expect(
            "line \(midLine) deleted", at: midLine,
            "sequence \(midLine + 1), expected \(midLine): entries \(midLine)…\(midLine) are missing (deleted)")

        // A forged line inserted after line k, hashed with the documented canonical rule (computed
        // here by hand and cross-checked with the library) and linked to line k, but without the key.
        let k = checkpoints[0] / 2 + 1  // a line in the first run, well before its checkpoint
        let forged = try forgedEntry(after: entries[k - 1])
        // The forged entry itself is flawless: its seq is k+1, its prev is line k's hash and its hash
        // is right. The break shows at the NEXT line (k+2): the original entry k+1 still says seq k+1
        // and prev = hash of line k, so its seq repeats and its link skips the forged entry.
        try fresh()
        var inserted = lines
        inserted.insert(forged, at: k)
        try writeLines(segPath, inserted)
        try expect(
            "forged line inserted after \(k)", at: k + 2,
            "sequence \(k + 1), expected \(k + 2): seq \(k + 1) repeats or goes backwards")

        // A forger who also renumbers and re-hashes everything after the insertion (and rewrites
        // HEAD) is caught by the first signed checkpoint after it: it signed the old hash of its seq.
        try fresh()
        var rewritten = inserted
        try rechain(&rewritten, from: k + 1, renumber: true)
        try writeLines(segPath, rewritten)
        try writeHead(jdir, rewritten)
        let cp0 = checkpoints[0] + 2  // its line after the insertion (1-based)
        let signed0 = try XCTUnwrap(intMember(entries[checkpoints[0]].details, "signed_seq"))
        XCTAssertEqual(signed0, entries[checkpoints[0]].seq - 1, "a checkpoint signs the entry before it")
        try expect(
            "forged line inserted, rest re-chained", at: cp0,
            "checkpoint signs seq \(signed0) with a hash that is not the chain's")
        // … and if the forger also moves the checkpoint's signed seq/hash onto the new chain, its
        // signature no longer verifies.
        try fresh()
        var resigned = inserted
        try rechain(&resigned, from: k + 1, renumber: true, retargetCheckpoints: true)
        try writeLines(segPath, resigned)
        try writeHead(jdir, resigned)
        try expect(
            "forged line inserted, rest re-chained, checkpoint retargeted", at: cp0, "checkpoint signature INVALID")

        // Two lines swapped: reported at the first swapped position.
        try fresh()
        var swapped = lines
        swapped.swapAt(mid, mid + 1)
        try writeLines(segPath, swapped)
        try expect(
            "lines \(midLine) and \(midLine + 1) swapped", at: midLine, "sequence \(midLine + 1), expected \(midLine)")

        // The tail truncated (last 3 lines) without a manifest: HEAD still names seq n.
        try fresh()
        try writeLines(segPath, Array(lines.prefix(n - 3)))
        try expect(
            "last 3 lines removed", at: n - 3,
            "the journal ends at seq \(n - 3) but HEAD records seq \(n): entries after this line were truncated")

        // Truncated before the latest manifest's journal head, with HEAD deleted too: the published
        // manifest alone proves the journal once reached further. (A manifest records the head at
        // sealing time, i.e. the entry just before its job's bundle.sealed, job.published and
        // job.finished — so the cut must remove more than the last 3 lines to lie before it.)
        let heads = try manifests.map { try manifestHead($0) }
        let latest = try XCTUnwrap(heads.max { $0.seq < $1.seq })
        XCTAssertEqual(entries[latest.seq - 1].hash, latest.hash, "a manifest head is in the pristine chain")
        // Jobs are sealed in parallel, so the head a manifest records lies before its job's
        // bundle.sealed entry, possibly before other jobs' entries too.
        let sealedAt = try XCTUnwrap(entries.firstIndex { $0.type == "bundle.sealed" && $0.seq > latest.seq })
        XCTAssertGreaterThan(entries[sealedAt].seq, latest.seq)
        XCTAssertLessThan(
            latest.seq, n - 3, "the last head precedes at least bundle.sealed, job.published, job.finished, checkpoint")
        try fresh()
        try writeLines(segPath, Array(lines.prefix(latest.seq - 1)))
        try FileSystem.remove(jdir + "/HEAD")
        try expect(
            "cut before the latest manifest head, HEAD deleted", at: latest.seq - 1,
            "was sealed under journal seq \(latest.seq), but the journal ends at seq \(latest.seq - 1): it was truncated after this line",
            manifests.flatMap { ["--manifest", $0] })

        // A checkpoint's signature altered (one base64 character of the signature bytes flipped) by
        // someone who re-hashes the chain and HEAD so that only the signature can tell.
        let c = checkpoints[0]
        try fresh()
        var flipped = lines
        var ce = entries[c]
        let sig = try XCTUnwrap(stringMember(ce.details, "signature"))
        ce.details = replacing(ce.details, "signature", with: .string(flipBase64(sig)))
        ce.hash = ce.computedHash
        flipped[c] = ce.line
        try rechain(&flipped, from: c + 1, renumber: false)
        try writeLines(segPath, flipped)
        try writeHead(jdir, flipped)
        try expect("checkpoint signature altered", at: c + 1, "checkpoint signature INVALID")

        // A checkpoint re-signed with another Ed25519 key (made by ssh-keygen): a valid SSHSIG, but
        // not the spool's key, so not trusted — by default and with the spool's allowed_signers.
        let keygen = try XCTUnwrap(which("ssh-keygen"), "ssh-keygen is needed")
        let other = s.base + "/other_key"
        XCTAssertEqual(
            try runCommand(keygen, ["-q", "-t", "ed25519", "-N", "", "-C", "intruder", "-f", other]).status, 0)
        let both = s.base + "/both_signers"
        let otherPub = String(decoding: try FileSystem.readFile(other + ".pub"), as: UTF8.self).split(separator: " ")
            .prefix(2).joined(separator: " ")
        try (s.text("keys/allowed_signers") + "dsar namespaces=\"dsar-journal\" \(otherPub)\n").write(
            toFile: both, atomically: true, encoding: .utf8)
        /// The journal with checkpoint `index` re-signed by ssh-keygen with the other key, the chain
        /// after it re-hashed and HEAD rewritten.
        func resignedWithOtherKey(_ index: Int) throws -> [[UInt8]] {
            let msgFile = s.base + "/cp-message-\(index).txt"
            let signedSeq = try XCTUnwrap(intMember(entries[index].details, "signed_seq"))
            try Data(Journal.checkpointMessage(seq: signedSeq, hash: entries[signedSeq - 1].hash)).write(
                to: URL(fileURLWithPath: msgFile))
            let signRun = try runCommand(keygen, ["-Y", "sign", "-f", other, "-n", "dsar-journal", msgFile])
            XCTAssertEqual(signRun.status, 0, signRun.stderr)
            let otherSig = String(decoding: try FileSystem.readFile(msgFile + ".sig"), as: UTF8.self)
            var foreign = lines
            var fe = entries[index]
            fe.details = replacing(fe.details, "signature", with: .string(otherSig))
            fe.hash = fe.computedHash
            foreign[index] = fe.line
            if index + 1 < foreign.count { try rechain(&foreign, from: index + 1, renumber: false) }
            return foreign
        }
        // The last checkpoint (the journal's last line).
        let last = checkpoints[1]
        XCTAssertEqual(last, n - 1)
        try fresh()
        let foreignLast = try resignedWithOtherKey(last)
        try writeLines(segPath, foreignLast)
        try writeHead(jdir, foreignLast)
        try expect(
            "last checkpoint re-signed with another key", at: last + 1,
            "checkpoint signer not trusted: signed by SHA256:")
        try expect(
            "last checkpoint re-signed with another key, --allowed-signers", at: last + 1,
            "checkpoint signer not trusted",
            ["--allowed-signers", s.root + "/keys/allowed_signers"])
        // An allowed_signers file that trusts both keys accepts it: the ssh-keygen signature is valid.
        let trustedBoth = try verify(["--allowed-signers", both])
        XCTAssertEqual(trustedBoth.status, 0, trustedBoth.stderr)
        XCTAssertTrue(trustedBoth.stdout.contains("2 signed checkpoints"), trustedBoth.stdout)
        // The first checkpoint re-signed: not trusted at its line; and even when its key is trusted,
        // re-hashing the chain after it breaks the later checkpoint, which signed the old hashes.
        try fresh()
        let foreignFirst = try resignedWithOtherKey(c)
        try writeLines(segPath, foreignFirst)
        try writeHead(jdir, foreignFirst)
        try expect("first checkpoint re-signed with another key", at: c + 1, "checkpoint signer not trusted")
        let signedLast = try XCTUnwrap(intMember(entries[last].details, "signed_seq"))
        try expect(
            "first checkpoint re-signed, both keys trusted", at: last + 1,
            "checkpoint signs seq \(signedLast) with a hash that is not the chain's",
            ["--allowed-signers", both])
    }

    // MARK: - 2. checkpoints with ssh-keygen alone

    func testAuditorVerifiesCheckpointsWithSshKeygenAndPlainTextSearch() throws {
        let keygen = try XCTUnwrap(which("ssh-keygen"), "ssh-keygen is needed")
        let (s, _) = try Self.realJournal()
        let cdir = s.root + "/journal/checkpoints"
        let texts = s.list("journal/checkpoints").filter { $0.hasSuffix(".txt") }
        XCTAssertEqual(texts.count, 2, "one checkpoint per run: \(s.list("journal/checkpoints"))")
        let segment = try XCTUnwrap(try journalSegments(s.root + "/journal").first)
        let journalText = s.text("journal/" + segment)
        for name in texts {
            XCTAssertTrue(s.list("journal/checkpoints").contains(name + ".sig"), "\(name).sig")
            let r = try runCommand(
                keygen,
                [
                    "-Y", "verify", "-f", s.root + "/keys/allowed_signers", "-I", "dsar", "-n", "dsar-journal", "-s",
                    cdir + "/" + name + ".sig",
                ],
                stdin: s.text("journal/checkpoints/" + name))
            XCTAssertEqual(r.status, 0, "ssh-keygen rejected \(name): \(r.stdout) \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("Good \"dsar-journal\" signature for dsar"), r.stdout)

            // The message: three lines, seq and hash.
            let msg = s.text("journal/checkpoints/" + name)
            let parts = msg.split(separator: "\n", omittingEmptySubsequences: false)
            XCTAssertEqual(parts.count, 4, msg)
            XCTAssertEqual(parts.first, "dsar-journal checkpoint")
            let seq = try XCTUnwrap(parts.first { $0.hasPrefix("seq: ") }.map { String($0.dropFirst(5)) })
            let hash = try XCTUnwrap(parts.first { $0.hasPrefix("hash: ") }.map { String($0.dropFirst(6)) })
            XCTAssertEqual(name, String(repeating: "0", count: 9 - seq.count) + seq + ".txt")
            // Plain text search, as an auditor with grep would: the line holding "seq":N has that hash.
            let matching = journalText.split(separator: "\n").filter { $0.contains("\"seq\":\(seq),") }
            XCTAssertEqual(matching.count, 1, "lines with seq \(seq)")
            XCTAssertTrue(
                matching.first?.contains("\"hash\":\"\(hash)\"") ?? false,
                "journal line of seq \(seq) does not carry hash \(hash): \(matching)")
            // And the checkpoint entry in the journal carries the same signature.
            let sig = s.text("journal/checkpoints/" + name + ".sig")
            let cpLine = journalText.split(separator: "\n").first {
                $0.contains("\"type\":\"checkpoint\"") && $0.contains("\"signed_seq\":\(seq)}")
            }
            let cp = try JournalEntry.parse(Array(try XCTUnwrap(cpLine, "checkpoint entry for \(seq)").utf8))
            XCTAssertEqual(stringMember(cp.details, "signature"), sig)
            XCTAssertEqual(stringMember(cp.details, "signed_hash"), hash)
            XCTAssertEqual(cp.seq, Int(seq)! + 1, "the checkpoint entry follows the entry it signs")

            // The oracle says no to a different hash, a different namespace, and a different principal.
            let altered = msg.replacingOccurrences(of: "hash: \(hash)", with: "hash: \(String(hash.reversed()))")
            let bad = try runCommand(
                keygen,
                [
                    "-Y", "verify", "-f", s.root + "/keys/allowed_signers", "-I", "dsar", "-n", "dsar-journal", "-s",
                    cdir + "/" + name + ".sig",
                ],
                stdin: altered)
            XCTAssertNotEqual(bad.status, 0, "ssh-keygen accepted an altered checkpoint message")
            let ns = try runCommand(
                keygen,
                [
                    "-Y", "verify", "-f", s.root + "/keys/allowed_signers", "-I", "dsar", "-n", "dsar-manifest", "-s",
                    cdir + "/" + name + ".sig",
                ],
                stdin: msg)
            XCTAssertNotEqual(ns.status, 0, "a journal checkpoint must not pass as a manifest signature")
        }
    }

    // MARK: - 3. kill -9 during appends

    enum Tear: String, Sendable { case none, partial, newlineOnly }

    /// `DSAR_CRASH_AT=journal.appended:N` (SIGKILL after the N-th append — one or more lines of one
    /// step — is written, before its fsync and HEAD update) for several N; in some cases the last
    /// line is then torn by hand as a power loss could leave it (a prefix without newline, or the
    /// whole entry minus its newline). The next `dsar run` recovers, and `dsar audit verify` passes,
    /// reporting the recovery.
    func testKill9AtJournalAppendsThenRunAgainVerifies() throws {
        let cases: [(Int, Tear)] = [
            (1, .none), (2, .partial), (3, .newlineOnly), (5, .partial), (7, .none), (9, .newlineOnly),
        ]
        let problems = inParallel(cases.count, width: 3) { i in
            let (hit, tear) = cases[i]
            return try Self.crashAtAppend(hit: hit, tear: tear).map {
                "journal.appended:\(hit) (\(tear.rawValue)): \($0)"
            }
        }
        XCTAssertEqual(problems, [])
    }

    static func crashAtAppend(hit: Int, tear: Tear) throws -> [String] {
        var problems: [String] = []
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try s.initialize()
        let ids = ["C-1", "C-2", "C-3"]
        try s.drop("a.json", #"{"request_id": "C-1", "action": "export", "email": "alice@example.com"}"#)
        try s.drop("b.json", #"{"request_id": "C-2", "action": "export", "user_id": "733105"}"#)
        try s.drop("c.json", #"{"request_id": "C-3", "action": "export", "ip": "203.0.113.77"}"#)
        let crashed = try s.dsar(
            ["run", "--settle", "0", "--connectors", dir], env: ["DSAR_CRASH_AT": "journal.appended:\(hit)"],
            timeout: 60)
        guard crashed.signaled && crashed.status == SIGKILL else {
            return ["expected SIGKILL at append \(hit), got status \(crashed.status): \(crashed.stderr.suffix(500))"]
        }
        let jdir = s.root + "/journal"
        guard let seg = try journalSegments(jdir).last else { return ["no journal segment after the crash"] }
        let segPath = jdir + "/" + seg
        var lines = try readLines(segPath)
        if lines.count < hit { problems.append("\(lines.count) journal lines after a crash at append \(hit)") }
        // HEAD lags behind the crashed append: it names a complete entry before the last one.
        let head = s.text("journal/HEAD")
        let entries = lines.compactMap { try? JournalEntry.parse($0) }
        if hit == 1 {
            if !head.isEmpty { problems.append("HEAD exists before the first append completed: \(head)") }
        } else if !entries.dropLast().contains(where: { head == "\($0.seq) \($0.hash)\n" }) {
            problems.append("HEAD \(head) is not an entry before the crashed append")
        }
        var tornBytes: [UInt8] = []
        if tear != .none, let last = lines.popLast() {
            tornBytes = tear == .partial ? Array(last.prefix(last.count * 2 / 5)) : last
            var data: [UInt8] = lines.flatMap { $0 + [0x0A] }
            data += tornBytes
            try Data(data).write(to: URL(fileURLWithPath: segPath))
            let v = try runCommand(dsarBinary, ["audit", "verify", "--spool", s.root])
            if v.status != 1 || !v.stderr.contains("journal/\(seg):\(lines.count + 1): torn last line") {
                problems.append("verify before recovery: \(v.status) \(v.stderr)")
            }
        }
        let again = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: 60)
        if again.status != 0 {
            problems.append("rerun exited \(again.status): \(again.stdout) \(again.stderr.suffix(1000))")
        }
        problems += try spoolProblems(s, expected: ids)
        let v = try runCommand(dsarBinary, ["audit", "verify", "--spool", s.root])
        if v.status != 0 || !v.stdout.hasPrefix("OK: ") {
            problems.append("verify after recovery: \(v.status) \(v.stdout) \(v.stderr)")
        }
        let tornFile = segPath + ".torn"
        if tear == .none {
            if v.stdout.contains("recovered") {
                problems.append("a recovery reported without a torn line: \(v.stdout)")
            }
            if FileSystem.exists(tornFile) { problems.append("a .torn file without a torn line") }
        } else {
            if !v.stdout.contains("; 1 torn tail recovered after a crash (kept in *.torn)") {
                problems.append("OK line does not report the recovery: \(v.stdout)")
            }
            let kept = (try? FileSystem.readFile(tornFile)) ?? []
            // The .torn file: one "# …" marker line, then exactly the torn bytes, then a newline.
            if let nl = kept.firstIndex(of: 0x0A) {
                let marker = String(decoding: kept[..<nl], as: UTF8.self)
                if !marker.hasPrefix("# ") || !marker.contains("\(tornBytes.count) bytes") {
                    problems.append("marker line: \(marker)")
                }
                if Array(kept[(nl + 1)...]) != tornBytes + [0x0A] {
                    problems.append(".torn does not hold the torn bytes: \(String(decoding: kept, as: UTF8.self))")
                }
            } else {
                problems.append("no .torn file with the torn bytes (\(kept.count) bytes)")
            }
            let recovered = try Journal(dir: jdir, signer: nil).entries().filter {
                $0.entry.type == "journal.recovered"
            }
            if recovered.count != 1
                || intMember(recovered.first?.entry.details ?? .null, "torn_bytes") != tornBytes.count
            {
                problems.append(
                    "journal.recovered entries: \(recovered.map { String(decoding: $0.entry.line, as: UTF8.self) })")
            }
        }
        return problems
    }

    /// Real SIGKILLs at random moments (after a random number of further journal lines, plus a
    /// random delay) during a batch of 50 requests, twice, then a clean run: the journal verifies.
    func testRandomKill9DuringABatchOf50KeepsTheJournalVerifiable() throws {
        let problems = inParallel(2, width: 2) { round in try Self.randomKills(round) }
        XCTAssertEqual(problems, [])
    }

    static func randomKills(_ round: Int) throws -> [String] {
        var rng = SystemRandomNumberGenerator()
        var problems: [String] = []
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try s.initialize()
        let ids = try dropRequests(s, prefix: "RK\(round)", count: 50)
        let jdir = s.root + "/journal"
        func lineCount() -> Int {
            ((try? journalSegments(jdir)) ?? []).reduce(0) { n, seg in
                n + ((try? FileSystem.readFile(jdir + "/" + seg)) ?? []).filter { $0 == 0x0A }.count
            }
        }
        var log: [String] = []
        var killedMidJournal = 0
        for _ in 1...2 {
            let before = lineCount()
            let target = before + Int.random(in: 5...250, using: &rng)
            let child = try s.start(["run", "--settle", "0", "--connectors", dir])
            waitUntil(timeout: 30) { lineCount() >= target || !child.process.isRunning }
            usleep(UInt32.random(in: 0...20_000, using: &rng))
            child.signal(SIGKILL)
            let r = try child.wait(timeout: 60)
            if r.signaled { killedMidJournal += 1 }
            log.append(
                "kill after \(target - before) lines: \(r.signaled ? "killed" : "had exited \(r.status)") at \(lineCount()) lines"
            )
            if !r.signaled && r.status != 0 { problems.append("a run exited \(r.status): \(r.stderr.suffix(1000))") }
        }
        let final = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: 120)
        if final.status != 0 { problems.append("final run exited \(final.status): \(final.stderr.suffix(1000))") }
        // A kill inside the atomic write of HEAD (or a checkpoint file) leaves its dot temp file in
        // journal/; that is asserted deterministically in testRecoveryRemovesJournalTempFilesLeftByAKill,
        // so here it is set aside to keep this test about the journal's integrity.
        for f in s.allFiles("journal") where f.hasSuffix(".tmp") { try FileSystem.remove(s.root + "/" + f) }
        problems += try spoolProblems(s, expected: ids)
        let v = try runCommand(dsarBinary, ["audit", "verify", "--spool", s.root])
        if v.status != 0 || !v.stdout.hasPrefix("OK: ") {
            problems.append("verify: \(v.status) \(v.stdout) \(v.stderr)")
        }
        if killedMidJournal == 0 { problems.append("no kill landed while dsar was running") }
        let context = "round \(round) (\(log.joined(separator: "; ")))"
        return problems.map { "\(context): \($0)" }
    }

    /// `kill -9` inside `FileSystem.writeAtomically` of journal/HEAD (after the temp file is created,
    /// before the rename) leaves `journal/.HEAD.<pid>.<random>.tmp` — observed in the random-kill
    /// test. Recovery removes such leftovers in jobs/, active/, rejected/ and failed/ (and the spool
    /// checks in E2EHelpers treat any surviving *.tmp as a problem); journal/ and
    /// journal/checkpoints/ must be no exception.
    func testRecoveryRemovesJournalTempFilesLeftByAKill() throws {
        let s = try TempSpool()
        try s.initialize()
        try s.drop("a.json", #"{"action": "export", "user_id": "733105"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"]).status, 0)
        // What a kill at those moments leaves behind (the names writeAtomically uses).
        let leftovers = ["journal/.HEAD.4242.1717046975.tmp", "journal/checkpoints/.000000007.txt.4242.99.tmp"]
        for f in leftovers { try Data("7 0000\n".utf8).write(to: URL(fileURLWithPath: s.root + "/" + f)) }
        try s.drop("b.json", #"{"action": "export", "user_id": "904217"}"#)
        let r = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0)
        let left = s.allFiles("journal").filter { $0.hasSuffix(".tmp") }
        XCTAssertEqual(left, [], "temp files from a killed run are never cleaned up in journal/")
    }

    /// `dsar extend` appends to the journal without recovering a torn tail first. After a crash that
    /// tore the journal's last line, extending an open job must either journal the extension or
    /// change nothing, and the journal must stay usable and verifiable.
    func testExtendAfterACrashThatToreTheJournalTail() throws {
        for tear in [Tear.partial, Tear.newlineOnly] {
            let s = try TempSpool()
            try s.initialize()
            try s.drop("a.json", #"{"request_id": "X-1", "action": "export", "user_id": "733105"}"#)
            // Killed once the job is RUNNING (still open, so it can be extended) …
            let crashed = try s.dsar(["run", "--settle", "0"], env: ["DSAR_CRASH_AT": "job.running"])
            XCTAssertTrue(crashed.signaled, "\(crashed.status) \(crashed.stderr)")
            let job = try XCTUnwrap(try s.record(requestID: "X-1"))
            // … and the journal's last line torn as a power loss during its append could leave it.
            let seg = try XCTUnwrap(try journalSegments(s.root + "/journal").last)
            let segPath = s.root + "/journal/" + seg
            var data = try FileSystem.readFile(segPath)
            data.removeLast(tear == .partial ? 40 : 1)
            try Data(data).write(to: URL(fileURLWithPath: segPath))

            let ext = try s.dsar(["extend", job.jobID, "--days", "10", "--reason", "complex request"])
            let after = try XCTUnwrap(try s.record(requestID: "X-1"))
            let run = try s.dsar(["run", "--settle", "0"])
            XCTAssertEqual(run.status, 0, "\(tear): dsar run after the extend: \(run.stdout) \(run.stderr)")
            let v = try s.dsar(["audit", "verify"])
            XCTAssertEqual(v.status, 0, "\(tear): the journal no longer verifies: \(v.stderr)")
            let journaled = s.text("journal/" + seg).contains("\"type\":\"deadline.extended\"")
            if ext.status == 0 {
                XCTAssertEqual(after.extensions.count, 1)
                XCTAssertTrue(journaled, "\(tear): extended but not journaled")
            } else {
                XCTAssertEqual(
                    after.extensions.count, 0,
                    "\(tear): dsar extend failed (\(ext.stderr.trimmingCharacters(in: .whitespacesAndNewlines))) yet the job's deadline was extended, with no journal entry"
                )
                XCTAssertEqual(after.deadline, job.deadline)
            }
        }
    }

    // MARK: - 4. no personal data

    func testJournalHoldsNoIdentifierValues() throws {
        let s = try TempSpool()
        let dir = try Self.makeConnectors(s)
        try s.initialize()
        // a → user_id 904217, phone +49305550172; b → carol@example.org, +14155550199
        try s.drop("a.json", #"{"action": "export", "email": "Alice@Example.com"}"#)
        try s.drop("b.json", #"{"action": "export", "user_id": "733105"}"#)
        try s.drop(
            "c.json",
            #"{"action": "export", "subject": {"ip": ["198.51.100.23", "2001:db8::17"], "phone": "+49 30 5550172"}}"#)
        try s.drop("d.json", #"{"action": "export", "phone": "0049 30 5550000"}"#)
        try s.drop("e.json", #"{"action": "export", "email": "bad-address.example.com"}"#)  // rejected
        let r1 = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r1.status, 2, "one request is rejected: \(r1.stdout) \(r1.stderr)")
        // Identity expansion really happened, so derived values had their chance to leak.
        let provenances = try s.records().flatMap { $0.identifiers.map(\.provenance) }
        XCTAssertTrue(provenances.contains { $0.contains("user_id derived from accounts") }, "\(provenances)")
        XCTAssertTrue(provenances.contains { $0.contains("email derived from accounts") }, "\(provenances)")
        XCTAssertTrue(provenances.contains { $0.contains("phone derived from accounts") }, "\(provenances)")
        // A second run that crashes mid-append and has its last line torn, so there is a .torn file.
        try s.drop("f.json", #"{"action": "export", "email": "carol@example.org", "ip": "203.0.113.77"}"#)
        let crashed = try s.dsar(
            ["run", "--settle", "0", "--connectors", dir], env: ["DSAR_CRASH_AT": "journal.appended:4"])
        XCTAssertTrue(crashed.signaled, "crash point: \(crashed.status) \(crashed.stderr)")
        let seg = try XCTUnwrap(try journalSegments(s.root + "/journal").last)
        let segPath = s.root + "/journal/" + seg
        var data = try FileSystem.readFile(segPath)
        data.removeLast(30)
        try Data(data).write(to: URL(fileURLWithPath: segPath))
        let r2 = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        let v = try s.dsar(["audit", "verify"])
        XCTAssertTrue(v.stdout.contains("1 torn tail recovered"), v.stdout + v.stderr)

        let files = s.allFiles("journal")
        XCTAssertTrue(files.contains { $0.hasSuffix(".torn") }, "\(files)")
        XCTAssertTrue(files.contains("journal/HEAD"), "\(files)")
        XCTAssertGreaterThanOrEqual(files.filter { $0.hasPrefix("journal/checkpoints/") }.count, 4, "\(files)")
        let identifiers = [
            "alice@example.com", "carol@example.org", "malice@example.com", "bad-address.example.com",
            "904217", "733105", "9042170",
            "+49 30 5550172", "+49305550172", "49305550172", "305550172", "5550172",
            "+1 415 555 0199", "+14155550199", "14155550199", "4155550199", "5550199",
            "0049 30 5550000", "+49305550000", "49305550000", "5550000",
            "198.51.100.23", "203.0.113.77", "2001:db8::17", "2001:0db8::17", "2001:0db8:0000:0000:0000:0000:0000:0017",
        ]
        var hits: [String] = []
        for f in files {
            let bytes = Array(
                String(decoding: try FileSystem.readFile(s.root + "/" + f), as: UTF8.self).lowercased().utf8)
            for id in identifiers where containsToken(bytes, Array(id.lowercased().utf8)) {
                hits.append("\(f) contains \(id)")
            }
        }
        XCTAssertEqual(hits, [])
        // The search itself works: the same identifiers are found in the connector data.
        let csv = Array(try FileSystem.readFile(dir + "/data/accounts.csv"))
        XCTAssertTrue(containsToken(csv, Array("904217".utf8)))
        XCTAssertFalse(containsToken(csv, Array("04217".utf8)), "token boundaries")
    }

    /// A plugin that fails and names the identifier it was given on stderr (as real CRM clients do:
    /// "no customer alice@example.com"): the journal's connector.failed reason must not copy it.
    func testFailingPluginStderrDoesNotCarryIdentifiersIntoTheJournal() throws {
        let s = try TempSpool()
        let dir = try Self.makeConnectors(s)
        try writeFile(
            dir + "/crm.sh",
            """
            #!/bin/sh
            v=$(sed -n 's/.*"value":"\\([^"]*\\)".*/\\1/p')
            echo "crm: lookup of $v failed: HTTP 500" >&2
            exit 2

            """, mode: 0o755)
        try writeFile(dir + "/crm.yaml", "name: crm\ntype: exec\ncommand: [ ./crm.sh ]\n")
        try s.initialize()
        try s.drop("a.json", #"{"action": "export", "email": "zoe@example.com"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 1, "the job ends PARTIAL: \(r.stdout) \(r.stderr)")
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.connectors.first { $0.name == "crm" }?.status, "failed")
        let journal = try s.allFiles("journal").map { s.text($0) }.joined(separator: "\n")
        XCTAssertTrue(journal.contains("\"type\":\"connector.failed\""), "no connector.failed entry")
        XCTAssertFalse(
            journal.lowercased().contains("zoe@example.com"),
            "the journal copies the plugin's stderr (with the e-mail address) verbatim")
    }

    // MARK: - 5. pseudonyms

    func testSameSubjectSamePseudonymAcrossJobsAndDifferentAcrossSpools() throws {
        let a = try TempSpool()
        try a.initialize()
        try a.drop("1.json", #"{"request_id": "P-1", "action": "export", "email": "Alice@Example.com"}"#)
        XCTAssertEqual(try a.dsar(["run", "--settle", "0"]).status, 0)
        try a.drop(
            "2.json",
            #"{"request_id": "P-2", "action": "export", "email": " alice@example.COM ", "ip": "198.51.100.23"}"#)
        try a.drop("3.json", #"{"request_id": "P-3", "action": "export", "email": "bob@example.com"}"#)
        XCTAssertEqual(try a.dsar(["run", "--settle", "0"]).status, 0)
        let b = try TempSpool()
        try b.initialize()
        try b.drop("1.json", #"{"request_id": "P-1", "action": "export", "email": "alice@example.com"}"#)
        XCTAssertEqual(try b.dsar(["run", "--settle", "0"]).status, 0)

        func subjects(_ s: TempSpool) throws -> [String: Set<String>] {
            let byJob = Dictionary(uniqueKeysWithValues: try s.records().map { ($0.jobID, $0.requestID ?? "") })
            var out: [String: Set<String>] = [:]
            for (_, _, e) in try Journal(dir: s.root + "/journal", signer: nil).entries() {
                guard let job = e.jobID, let rid = byJob[job] else { continue }
                out[rid, default: []].insert(e.subject ?? "<null>")
            }
            return out
        }
        let sa = try subjects(a)
        let sb = try subjects(b)
        for (rid, set) in sa.merging(sb, uniquingKeysWith: { $0.union($1) }) where rid != "P-1" {
            XCTAssertEqual(set.count, 1, "\(rid): one subject pseudonym for all of a job's entries: \(set)")
        }
        XCTAssertEqual(sa["P-1"]?.count, 1)
        let alice1 = try XCTUnwrap(sa["P-1"]?.first)
        let alice2 = try XCTUnwrap(sa["P-2"]?.first)
        let bob = try XCTUnwrap(sa["P-3"]?.first)
        XCTAssertEqual(alice1, alice2, "the same person (two jobs, two runs) has the same pseudonym")
        XCTAssertNotEqual(alice1, bob)
        XCTAssertEqual(alice1.count, 64)
        XCTAssertTrue(alice1.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        XCTAssertEqual(
            alice1, try Pseudonymizer.load(a.layout).pseudonym(Identifier(type: "email", value: "alice@example.com")))
        let aliceB = try XCTUnwrap(sb["P-1"]?.first)
        XCTAssertNotEqual(alice1, aliceB, "another spool (another pseudonym key) gives another pseudonym")
        XCTAssertEqual(
            aliceB, try Pseudonymizer.load(b.layout).pseudonym(Identifier(type: "email", value: "alice@example.com")))
        // The job records agree with the journal.
        XCTAssertEqual(try a.record(requestID: "P-2")?.subject, alice2)
    }

    // MARK: - 7. dsar events

    func testEventsListsTheJobsEntriesInOrderAndAsJSONLines() throws {
        let (s, _) = try Self.realJournal()
        let rec = try XCTUnwrap(try s.record(requestID: "J-1"))
        let job = rec.jobID
        let all = try Journal(dir: s.root + "/journal", signer: nil).entries()
        let mine = all.filter { $0.entry.jobID == job }
        XCTAssertGreaterThan(mine.count, 8)

        let text = try s.dsar(["events", job])
        XCTAssertEqual(text.status, 0, text.stderr)
        let rows = text.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(rows.count, mine.count, text.stdout)
        for (row, m) in zip(rows, mine) {
            XCTAssertTrue(
                row.hasPrefix("\(m.entry.time)  #\(m.entry.seq)  \(m.entry.type)"), "\(row) vs seq \(m.entry.seq)")
            XCTAssertTrue(row.hasSuffix("[\(m.segment):\(m.line)]"), row)
        }
        let types = mine.map(\.entry.type)
        XCTAssertEqual(types.first, "job.claimed")
        XCTAssertEqual(Array(types.prefix(3)), ["job.claimed", "request.received", "job.started"])
        XCTAssertEqual(Array(types.suffix(3)), ["bundle.sealed", "job.published", "job.finished"])
        XCTAssertTrue(types.contains("identifiers.derived"), "\(types)")
        XCTAssertTrue(rows.last?.contains("status=COMPLETED") ?? false, rows.last ?? "")
        XCTAssertTrue(
            rows.contains { $0.contains("connector.finished") && $0.contains("connector=accounts") }, text.stdout)
        let seqs = mine.map(\.entry.seq)
        XCTAssertEqual(seqs, seqs.sorted())
        XCTAssertEqual(Set(seqs).count, seqs.count)

        let json = try s.dsar(["events", job, "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let jrows = json.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(jrows.count, mine.count)
        for (row, m) in zip(jrows, mine) {
            let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(row.utf8)) as? [String: Any], row)
            XCTAssertEqual(obj["job_id"] as? String, job)
            XCTAssertEqual((obj["seq"] as? NSNumber)?.intValue, m.entry.seq)
            XCTAssertEqual(obj["type"] as? String, m.entry.type)
            XCTAssertEqual(row, String(decoding: m.entry.line, as: UTF8.self), "the exact journal line")
        }
        // Another job's history does not leak in; an unknown job is an error.
        let other = try XCTUnwrap(try s.record(requestID: "J-2")).jobID
        let otherRows = try s.dsar(["events", other, "--json"]).stdout.split(separator: "\n")
        XCTAssertFalse(otherRows.isEmpty)
        XCTAssertTrue(otherRows.allSatisfy { $0.contains("\"job_id\":\"\(other)\"") })
        XCTAssertNotEqual(try s.dsar(["events", "01a00000-0000-7000-8000-000000000000"]).status, 0)
    }
}

// MARK: - helpers

/// Journal segment names in order.
private func journalSegments(_ dir: String) throws -> [String] {
    try FileSystem.list(dir).filter { $0.hasSuffix(".jsonl") && $0.first?.isNumber == true }
}

/// A segment's complete lines, without their newlines.
private func readLines(_ path: String) throws -> [[UInt8]] {
    let data = try FileSystem.readFile(path)
    var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false).map { Array($0) }
    if data.last == 0x0A || data.isEmpty { lines.removeLast() }
    return lines
}

/// Replaces a segment's content with `lines`, each newline-terminated.
private func writeLines(_ path: String, _ lines: [[UInt8]]) throws {
    chmod(path, 0o600)
    try Data(lines.flatMap { $0 + [0x0A] }).write(to: URL(fileURLWithPath: path))
}

/// Rewrites HEAD as the journal writer would for the last of `lines`.
private func writeHead(_ dir: String, _ lines: [[UInt8]]) throws {
    let e = try JournalEntry.parse(try XCTUnwrap(lines.last))
    try Data("\(e.seq) \(e.hash)\n".utf8).write(to: URL(fileURLWithPath: dir + "/HEAD"))
}

/// Re-links (and optionally renumbers) every line from `start` on, as a forger without the signing
/// key can; with `retargetCheckpoints`, checkpoint entries are also pointed at the new chain.
private func rechain(
    _ lines: inout [[UInt8]], from start: Int, renumber: Bool, retargetCheckpoints: Bool = false
) throws {
    for k in start..<lines.count {
        var e = try JournalEntry.parse(lines[k])
        let before = try JournalEntry.parse(lines[k - 1])
        e.prev = before.hash
        if renumber { e.seq = before.seq + 1 }
        if retargetCheckpoints && e.type == "checkpoint" {
            e.details = replacing(e.details, "signed_seq", with: .number(String(before.seq)))
            e.details = replacing(e.details, "signed_hash", with: .string(before.hash))
        }
        e.hash = e.computedHash
        lines[k] = e.line
    }
}

/// A forged `job.finished` entry for `entry`'s job, linked after it; its canonical encoding (keys
/// sorted, compact) and hash are built by hand and must equal `JournalEntry.make`'s.
private func forgedEntry(after entry: JournalEntry) throws -> [UInt8] {
    let date = Date()
    let time = Timestamp.format(date)
    let job = try XCTUnwrap(entry.jobID)
    let subject = try XCTUnwrap(entry.subject)
    let body =
        #"{"details":{"records":0,"status":"COMPLETED"},"job_id":"\#(job)","prev":"\#(entry.hash)","seq":\#(entry.seq + 1),"subject":"\#(subject)","time":"\#(time)","type":"job.finished"}"#
    var h = StreamingSHA256()
    h.update(Array(body.utf8))
    let hash = h.hexDigest()
    let line =
        #"{"details":{"records":0,"status":"COMPLETED"},"hash":"\#(hash)","job_id":"\#(job)","prev":"\#(entry.hash)","seq":\#(entry.seq + 1),"subject":"\#(subject)","time":"\#(time)","type":"job.finished"}"#
    let made = JournalEntry.make(
        seq: entry.seq + 1, time: date,
        event: AuditEvent.jobFinished(job: job, subject: subject, status: .completed, records: 0), prev: entry.hash)
    XCTAssertEqual(String(decoding: made.line, as: UTF8.self), line, "the documented canonical rule")
    XCTAssertEqual(try JournalEntry.parse(Array(line.utf8)).computedHash, hash)
    return Array(line.utf8)
}

/// Byte offset of the value of `key` in an entry line (inside the string if it is one): the
/// top-level member (the last occurrence, as top-level keys sort after `details`), or the first
/// occurrence inside `details`.
private func valueOffset(_ line: [UInt8], key: String, inDetails: Bool) -> Int? {
    let needle = Array("\"\(key)\":".utf8)
    guard line.count >= needle.count else { return nil }
    let starts = (0...(line.count - needle.count)).filter { Array(line[$0..<($0 + needle.count)]) == needle }
    guard let at = inDetails ? starts.first : starts.last else { return nil }
    let v = at + needle.count
    return line[v] == 0x22 ? v + 1 : v
}

/// A different byte of the same class (digit, hex digit, letter), so the line stays well-formed.
private func changedByte(_ b: UInt8) -> UInt8 {
    switch b {
    case UInt8(ascii: "9"): return UInt8(ascii: "8")
    case UInt8(ascii: "f"): return UInt8(ascii: "e")
    case UInt8(ascii: "z"): return UInt8(ascii: "y")
    case UInt8(ascii: "Z"): return UInt8(ascii: "Y")
    case UInt8(ascii: "0")...UInt8(ascii: "8"), UInt8(ascii: "a")...UInt8(ascii: "y"),
        UInt8(ascii: "A")...UInt8(ascii: "Y"):
        return b + 1
    default: return b == UInt8(ascii: "-") ? UInt8(ascii: "_") : UInt8(ascii: "x")
    }
}

/// An armored signature with one base64 character of the signature bytes (near the end of the
/// body, clear of padding) changed.
private func flipBase64(_ armored: String) -> String {
    var b = Array(armored.utf8)
    let start = (b.firstIndex(of: 0x0A) ?? 0) + 1
    let end = b.count - "-----END SSH SIGNATURE-----\n".utf8.count
    let body = (start..<end).filter { b[$0] != 0x0A && b[$0] != UInt8(ascii: "=") }
    let i = body[body.count - 20]
    b[i] = b[i] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
    return String(decoding: b, as: UTF8.self)
}

private func stringMember(_ v: JSONValue, _ key: String) -> String? {
    if case .string(let s)? = v[key] { return s }
    return nil
}

private func intMember(_ v: JSONValue, _ key: String) -> Int? {
    if case .number(let n)? = v[key] { return Int(n) }
    return nil
}

/// `v` (an object) with member `key`'s value replaced.
private func replacing(_ v: JSONValue, _ key: String, with value: JSONValue) -> JSONValue {
    guard case .object(let members) = v else { return v }
    return .object(members.map { $0.key == key ? JSONMember(key: key, value: value) : $0 })
}

/// The `journal_head` of a manifest.
private func manifestHead(_ path: String) throws -> (seq: Int, hash: String) {
    let v = try JSONParser.parse(try FileSystem.readFile(path))
    guard case .number(let n)? = v["journal_head"]?["seq"], let seq = Int(n),
        case .string(let h)? = v["journal_head"]?["hash"]
    else {
        throw TestFailure("\(path) has no journal_head")
    }
    return (seq, h)
}

/// Whether `needle` occurs in `haystack` as a token: not preceded or followed by an ASCII letter or
/// digit (so "1042" inside a hex hash or "+491042" does not count, but "…:1042," does).
private func containsToken(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, haystack.count >= needle.count else { return false }
    func isAlnum(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) }
    var i = 0
    while i <= haystack.count - needle.count {
        if haystack[i] == needle[0] && Array(haystack[i..<(i + needle.count)]) == needle {
            let beforeOK = i == 0 || !isAlnum(haystack[i - 1]) || !isAlnum(needle[0])
            let afterOK =
                i + needle.count == haystack.count || !isAlnum(haystack[i + needle.count])
                || !isAlnum(needle[needle.count - 1])
            if beforeOK && afterOK { return true }
        }
        i += 1
    }
    return false
}
