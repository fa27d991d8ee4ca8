import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The journal library: the hash rule, torn-tail recovery, segment rolling, checkpoints and the
/// verifier's reports, driven directly.
final class JournalTests: XCTestCase {
    var dir = ""
    let key = SSHEd25519Key.generate(comment: "journal-test")

    override func setUpWithError() throws {
        var template = Array((NSTemporaryDirectory() + "dsar-journal-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        dir = String(cString: p) + "/journal"
    }

    override func tearDownWithError() throws {
        try FileSystem.removeTree((dir as NSString).deletingLastPathComponent)
    }

    var signer: ManifestSigner { ManifestSigner(key: key, principal: "dsar") }

    /// Trusts exactly this test's key.
    func trusted(_ blob: [UInt8], _ principal: String) -> String? {
        blob == key.publicKeyBlob && principal == "dsar" ? nil : "not this test's key"
    }

    func verify(manifests: [String] = []) throws -> JournalVerifier.Summary {
        try JournalVerifier.verify(dir: dir, manifests: manifests, isTrusted: trusted)
    }

    /// The problem `verify` reports (fails the test when it passes).
    func problem(file: StaticString = #filePath, line: UInt = #line) -> JournalVerifier.Problem? {
        do {
            let s = try verify()
            XCTFail("verify passed: \(s)", file: file, line: line)
        } catch let p as JournalVerifier.Problem {
            return p
        } catch {
            XCTFail("verify threw \(error)", file: file, line: line)
        }
        return nil
    }

    func event(_ k: Int, job: String = "01a00000-0000-7000-8000-000000000001") -> AuditEvent {
        AuditEvent.connectorScanned(
            job: job, subject: String(repeating: "ab", count: 32), connector: "accounts", records: k, bytesScanned: 0,
            durationMs: 0,
            attempts: 1, round: 1, failure: "padding so that a few dozen entries fill several 2000-byte segments")
    }

    func lines(_ name: String) throws -> [[UInt8]] {
        let data = try FileSystem.readFile(dir + "/" + name)
        var l = data.split(separator: 0x0A, omittingEmptySubsequences: false).map { Array($0) }
        if data.last == 0x0A || data.isEmpty { l.removeLast() }
        return l
    }

    // MARK: - the hash rule

    func testEntryHashIsSHA256OfTheCanonicalEncodingWithoutHash() throws {
        let date = Date(timeIntervalSince1970: 1_795_000_000)
        let prev = String(repeating: "7", count: 64)
        let e = JournalEntry.make(
            seq: 42, time: date,
            event: AuditEvent.connectorRetried(job: "J", subject: nil, connector: "x\ny\"é", attempts: 1), prev: prev)
        let time = Timestamp.format(date)
        let body =
            #"{"details":{"attempts":1,"connector":"x\ny\"é"},"job_id":"J","prev":"\#(prev)","seq":42,"subject":null,"time":"\#(time)","type":"connector.retried"}"#
        var h = StreamingSHA256()
        h.update(Array(body.utf8))
        XCTAssertEqual(e.hash, h.hexDigest())
        let line =
            #"{"details":{"attempts":1,"connector":"x\ny\"é"},"hash":"\#(e.hash)","job_id":"J","prev":"\#(prev)","seq":42,"subject":null,"time":"\#(time)","type":"connector.retried"}"#
        XCTAssertEqual(String(decoding: e.line, as: UTF8.self), line)
        let parsed = try JournalEntry.parse(e.line)
        XCTAssertEqual(parsed.line, e.line)
        XCTAssertEqual(parsed.computedHash, e.hash)
        // Non-canonical spellings of the same entry are refused (a space, unsorted keys, an escape).
        XCTAssertThrowsError(
            try JournalEntry.parse(Array(line.replacingOccurrences(of: ",\"seq\":42", with: ", \"seq\":42").utf8)))
        XCTAssertThrowsError(
            try JournalEntry.parse(
                Array(
                    line.replacingOccurrences(
                        of: #"{"attempts":1,"connector":"x\ny\"é"}"#, with: #"{"connector":"x\ny\"é","attempts":1}"#
                    ).utf8)))
        XCTAssertThrowsError(
            try JournalEntry.parse(
                Array(line.replacingOccurrences(of: "connector.retried", with: "connector\\u002eretried").utf8)))
    }

    // MARK: - appending, HEAD, checkpoints

    func testAppendsChainFromZeroHashAndHeadFollows() throws {
        let j = try Journal(dir: dir, signer: signer)
        XCTAssertNil(try j.head())
        for k in 1...5 { try j.append(event(k)) }
        let seg = try XCTUnwrap(try j.segments().first)
        let entries = try lines(seg).map { try JournalEntry.parse($0) }
        XCTAssertEqual(entries.map(\.seq), [1, 2, 3, 4, 5])
        XCTAssertEqual(entries[0].prev, JournalEntry.zeroHash)
        for k in 1..<5 { XCTAssertEqual(entries[k].prev, entries[k - 1].hash) }
        XCTAssertEqual(try j.head()?.seq, 5)
        XCTAssertEqual(try j.head()?.hash, entries[4].hash)
        XCTAssertEqual(
            String(decoding: try FileSystem.readFile(dir + "/HEAD"), as: UTF8.self), "5 \(entries[4].hash)\n")
        XCTAssertEqual(((try FileSystem.lstatus(dir + "/" + seg))?.mode ?? 0) & 0o777, 0o600)

        let head = try XCTUnwrap(try j.checkpoint())
        XCTAssertEqual(head.seq, 5)
        let base = dir + "/checkpoints/000000005.txt"
        XCTAssertEqual(
            String(decoding: try FileSystem.readFile(base), as: UTF8.self),
            "dsar-journal checkpoint\nseq: 5\nhash: \(entries[4].hash)\n")
        let sig = String(decoding: try FileSystem.readFile(base + ".sig"), as: UTF8.self)
        XCTAssertEqual(
            try SSHSig.verify(armored: sig, message: try FileSystem.readFile(base), namespace: "dsar-journal"),
            key.publicKeyBlob)
        let cp = try JournalEntry.parse(try XCTUnwrap(try lines(seg).last))
        XCTAssertEqual(cp.type, "checkpoint")
        XCTAssertEqual(cp.details["signed_seq"], .number("5"))
        XCTAssertEqual(cp.details["signed_hash"], .string(entries[4].hash))
        XCTAssertEqual(cp.details["principal"], .string("dsar"))
        XCTAssertEqual(cp.details["namespace"], .string("dsar-journal"))
        XCTAssertEqual(cp.details["signature"], .string(sig))
        let s = try verify()
        XCTAssertEqual(s.entries, 6)
        XCTAssertEqual(s.checkpoints, 1)
        XCTAssertTrue(s.description.hasPrefix("OK: 6 entries in 1 segment, 1 signed checkpoint, "), s.description)

        // Another key's checkpoint is refused by the trust callback, at the checkpoint's line.
        let other = SSHEd25519Key.generate(comment: "other")
        let j2 = try Journal(dir: dir, signer: ManifestSigner(key: other, principal: "dsar"))
        try j2.checkpoint()
        let p = try XCTUnwrap(problem())
        XCTAssertEqual(p.segment, seg)
        XCTAssertEqual(p.line, 7)
        XCTAssertTrue(p.message.hasPrefix("checkpoint signer not trusted: not this test's key"), p.message)
    }

    // MARK: - torn tail

    func testRecoverTornTailMovesExactlyThePartialBytesAside() throws {
        let j = try Journal(dir: dir, signer: signer)
        for k in 1...4 { try j.append(event(k)) }
        let seg = try XCTUnwrap(try j.segments().last)
        let path = dir + "/" + seg
        let complete = try FileSystem.readFile(path)
        let before = try lines(seg)
        // A partial line, as a crash in the middle of an append leaves it.
        let partial = Array(#"{"details":{"connector":"accounts","records":5},"hash":"9f8e7d"#.utf8)
        try Data(complete + partial).write(to: URL(fileURLWithPath: path))

        let p = try XCTUnwrap(problem())
        XCTAssertEqual(p.segment, seg)
        XCTAssertEqual(p.line, 5)
        XCTAssertTrue(
            p.message.hasPrefix("torn last line (a crash interrupted an append, \(partial.count) bytes)"), p.message)

        let r = try Journal(dir: dir, signer: signer).recoverTornTail()
        XCTAssertEqual(r.tornBytes, partial.count)
        XCTAssertEqual(r.tornFile, seg + ".torn")
        let torn = try FileSystem.readFile(path + ".torn")
        let nl = try XCTUnwrap(torn.firstIndex(of: 0x0A))
        let marker = String(decoding: torn[..<nl], as: UTF8.self)
        XCTAssertTrue(
            marker.hasPrefix("# ")
                && marker.hasSuffix("torn tail of \(seg) at byte \(complete.count), \(partial.count) bytes:"), marker)
        XCTAssertEqual(Array(torn[(nl + 1)...]), partial + [0x0A], "exactly the torn bytes")
        XCTAssertEqual(((try FileSystem.lstatus(path + ".torn"))?.mode ?? 0) & 0o777, 0o600)

        // The segment: its complete lines untouched, then the journal.recovered entry.
        let after = try lines(seg)
        XCTAssertEqual(Array(after.prefix(4)), before)
        XCTAssertEqual(after.count, 5)
        let rec = try JournalEntry.parse(after[4])
        XCTAssertEqual(rec.type, "journal.recovered")
        XCTAssertEqual(rec.seq, 5)
        XCTAssertEqual(rec.prev, try JournalEntry.parse(before[3]).hash)
        XCTAssertEqual(rec.details["torn_bytes"], .number(String(partial.count)))
        XCTAssertEqual(rec.details["torn_file"], .string(seg + ".torn"))
        XCTAssertEqual(try FileSystem.readFile(path).last, 0x0A)

        let s = try verify()
        XCTAssertEqual(s.entries, 5)
        XCTAssertEqual(s.recovered, 1)
        XCTAssertTrue(s.description.contains("; 1 torn tail recovered after a crash (kept in *.torn)"), s.description)
        // A second recovery finds nothing.
        XCTAssertEqual(try j.recoverTornTail().tornBytes, 0)
        XCTAssertEqual(try verify().entries, 5)
    }

    /// A torn tail that is a whole entry missing only its newline (the last byte of the write did
    /// not reach the disk) is also moved aside: the entry never made it into the chain durably.
    func testRecoverTornTailOfACompleteEntryWithoutNewline() throws {
        let j = try Journal(dir: dir, signer: signer)
        for k in 1...3 { try j.append(event(k)) }
        let seg = try XCTUnwrap(try j.segments().last)
        let path = dir + "/" + seg
        var data = try FileSystem.readFile(path)
        data.removeLast()
        let last = try XCTUnwrap(try lines(seg).last)
        try Data(data).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try Journal(dir: dir, signer: signer).recoverTornTail().tornBytes, last.count)
        let s = try verify()
        XCTAssertEqual(s.entries, 3, "two entries and journal.recovered")
        XCTAssertEqual(s.recovered, 1)
    }

    /// A process that appends without first recovering (as `dsar extend` does) on a journal whose
    /// tail is a complete entry minus its newline: the new entry must not be glued onto that line.
    /// Whatever append does (refuse, or recover first), a later recovery must leave a journal that
    /// verifies.
    func testAppendWithoutRecoveryNeverGluesOntoATornTail() throws {
        let j = try Journal(dir: dir, signer: signer)
        for k in 1...3 { try j.append(event(k)) }
        let seg = try XCTUnwrap(try j.segments().last)
        let path = dir + "/" + seg
        var data = try FileSystem.readFile(path)
        data.removeLast()
        try Data(data).write(to: URL(fileURLWithPath: path))

        let other = try Journal(dir: dir, signer: nil)
        _ = try? other.append(AuditEvent.deadlineExtended(job: "J", subject: "s", days: 5, deadline: "d", reason: "r"))
        for l in try lines(seg) {
            XCTAssertNoThrow(
                try JournalEntry.parse(l),
                "a line holds two entries: \(String(decoding: l, as: UTF8.self).prefix(400))…")
        }
        _ = try? Journal(dir: dir, signer: signer).recoverTornTail()
        XCTAssertNoThrow(try verify(), "the journal no longer verifies, and no recovery can repair it")
        XCTAssertNoThrow(
            try Journal(dir: dir, signer: signer).append(event(9)), "the journal can no longer be appended to")
    }

    /// The same with a partial line: append may refuse, but afterwards recovery must work.
    func testAppendWithoutRecoveryOnAPartialTornLineLeavesARecoverableJournal() throws {
        let j = try Journal(dir: dir, signer: signer)
        for k in 1...3 { try j.append(event(k)) }
        let seg = try XCTUnwrap(try j.segments().last)
        let path = dir + "/" + seg
        try Data(try FileSystem.readFile(path) + Array(#"{"details":{"conn"#.utf8)).write(
            to: URL(fileURLWithPath: path))
        _ = try? Journal(dir: dir, signer: nil).append(event(4))
        try Journal(dir: dir, signer: signer).recoverTornTail()
        let s = try verify()
        XCTAssertGreaterThanOrEqual(s.recovered, 1)
    }

    // MARK: - segments

    func testSegmentsRollChainContinuesClosedSegmentsAreReadOnlyAndTamperIsDetected() throws {
        let j = try Journal(dir: dir, signer: signer, segmentBytes: 2000)
        for k in 1...60 {
            try j.append(event(k))
            if k % 25 == 0 { try j.checkpoint() }
        }
        let segs = try j.segments()
        XCTAssertGreaterThan(segs.count, 3, "\(segs)")
        for (k, name) in segs.enumerated() {
            XCTAssertTrue(name.hasPrefix(String(format: "%06d-", k + 1)), name)
            XCTAssertTrue(name.hasSuffix(".jsonl"), name)
            let mode = try XCTUnwrap(try FileSystem.lstatus(dir + "/" + name)).mode & 0o777
            XCTAssertEqual(mode, k == segs.count - 1 ? 0o600 : 0o400, "\(name) mode \(String(mode, radix: 8))")
            if k < segs.count - 1 {
                // A segment is closed once it reached the limit (it may pass it by the one line that did).
                let size = try XCTUnwrap(try FileSystem.lstatus(dir + "/" + name)).size
                XCTAssertGreaterThanOrEqual(size, 2000, name)
                XCTAssertLessThan(size, 2000 + 1000, name)
            }
        }
        // The chain runs on across segment boundaries.
        for k in 1..<segs.count {
            let lastOfPrev = try JournalEntry.parse(try XCTUnwrap(try lines(segs[k - 1]).last))
            let firstOfNext = try JournalEntry.parse(try XCTUnwrap(try lines(segs[k]).first))
            XCTAssertEqual(firstOfNext.prev, lastOfPrev.hash)
            XCTAssertEqual(firstOfNext.seq, lastOfPrev.seq + 1)
        }
        let s = try verify()
        XCTAssertEqual(s.segments, segs.count)
        XCTAssertEqual(s.entries, 62)
        XCTAssertEqual(s.checkpoints, 2)
        XCTAssertTrue(
            s.description.contains("62 entries in \(segs.count) segments, 2 signed checkpoints"), s.description)
        XCTAssertEqual(try j.head()?.seq, 62)

        // One byte changed in a closed segment (line 3 of the second segment).
        let target = dir + "/" + segs[1]
        let original = try FileSystem.readFile(target)
        var l = try lines(segs[1])
        let at = try XCTUnwrap(l[2].indices.first { k in l[2][k...].starts(with: Array(#""records":"#.utf8)) }) + 10
        l[2][at] = l[2][at] == UInt8(ascii: "9") ? UInt8(ascii: "8") : l[2][at] + 1
        chmod(target, 0o600)
        try Data(l.flatMap { $0 + [0x0A] }).write(to: URL(fileURLWithPath: target))
        var p = try XCTUnwrap(problem())
        XCTAssertEqual(p.segment, segs[1])
        XCTAssertEqual(p.line, 3)
        XCTAssertTrue(p.message.hasPrefix("hash mismatch"), p.message)
        XCTAssertEqual(p.description, "journal/\(segs[1]):3: \(p.message)")

        // A whole closed segment deleted: reported at the first line of the next one.
        try Data(original).write(to: URL(fileURLWithPath: target))
        XCTAssertNoThrow(try verify())
        try FileSystem.remove(target)
        p = try XCTUnwrap(problem())
        XCTAssertEqual(p.segment, segs[2])
        XCTAssertEqual(p.line, 1)
        XCTAssertTrue(p.message.contains("are missing (deleted)"), p.message)
        try Data(original).write(to: URL(fileURLWithPath: target))

        // The last segment truncated by one line: HEAD catches it, at the new last line.
        let lastSeg = dir + "/" + segs[segs.count - 1]
        let lastLines = try lines(segs[segs.count - 1])
        try Data(lastLines.dropLast().flatMap { $0 + [0x0A] }).write(to: URL(fileURLWithPath: lastSeg))
        p = try XCTUnwrap(problem())
        XCTAssertEqual(p.segment, lastLines.count > 1 ? segs[segs.count - 1] : segs[segs.count - 2])
        XCTAssertTrue(p.message.contains("HEAD records seq 62"), p.message)
    }

    // MARK: - manifests

    func testManifestHeadMustBeInTheChain() throws {
        let j = try Journal(dir: dir, signer: signer)
        for k in 1...6 { try j.append(event(k)) }
        let head = try XCTUnwrap(try j.head())
        let m = (dir as NSString).deletingLastPathComponent + "/manifest.json"
        func writeManifest(_ seq: Int, _ hash: String) throws {
            try Data(#"{"format": "dsar-manifest-1", "journal_head": {"seq": \#(seq), "hash": "\#(hash)"}}"#.utf8)
                .write(to: URL(fileURLWithPath: m))
        }
        try writeManifest(4, try JournalEntry.parse(try lines(try j.segments()[0])[3]).hash)
        XCTAssertEqual(try verify(manifests: [m]).manifests, 1)
        try writeManifest(head.seq + 3, head.hash)
        XCTAssertThrowsError(try verify(manifests: [m])) { e in
            let p = e as? JournalVerifier.Problem
            XCTAssertEqual(p?.line, 6)
            XCTAssertTrue(
                p?.message.contains("sealed under journal seq 9, but the journal ends at seq 6") ?? false, "\(e)")
        }
        try writeManifest(4, String(repeating: "e", count: 64))
        XCTAssertThrowsError(try verify(manifests: [m])) { e in
            XCTAssertTrue("\(e)".contains("was sealed under seq 4 with hash eeee"), "\(e)")
        }
    }
}
