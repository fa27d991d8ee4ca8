import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Trust anchors, through the real binary with `ssh-keygen` as the oracle: `dsar verify` refuses an
/// outbox entry it cannot tie to a trusted key; `dsar audit verify` catches a truncated journal
/// (HEAD deleted), edited or re-signed checkpoint files, and — with a witness file kept outside the
/// spool — truncation and rewritten history that leave nothing to see inside the spool.
final class TrustE2ETests: XCTestCase {
    var keygen: String { which("ssh-keygen") ?? "/usr/bin/ssh-keygen" }

    /// A fresh Ed25519 key made by ssh-keygen (not the spool's); returns its path and its `type base64`.
    func foreignKey(_ s: TempSpool, _ name: String) throws -> (path: String, pub: String) {
        let path = s.base + "/" + name
        let r = try runCommand(keygen, ["-q", "-t", "ed25519", "-N", "", "-C", "intruder", "-f", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let pub = String(decoding: try FileSystem.readFile(path + ".pub"), as: UTF8.self).split(separator: " ").prefix(
            2
        ).joined(separator: " ")
        return (path, pub)
    }

    /// `ssh-keygen -Y sign` of `file` with `key` into `file.sig` (replacing it).
    func sshSign(_ file: String, key: String, namespace: String) throws {
        try? FileSystem.remove(file + ".sig")
        let r = try runCommand(keygen, ["-Y", "sign", "-f", key, "-n", namespace, file])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    // MARK: - 1. dsar verify needs a trust anchor

    func testVerifyAwayFromTheSpoolNeedsATrustAnchor() throws {
        let (s, _) = try JournalE2ETests.realJournal()
        let job = try XCTUnwrap(s.list("outbox").first)
        let away = s.base + "/away"
        try FileManager.default.createDirectory(atPath: away, withIntermediateDirectories: true)
        XCTAssertEqual(try runCommand("/bin/cp", ["-a", s.root + "/outbox/" + job, away + "/" + job]).status, 0)
        let entry = away + "/" + job
        /// `dsar verify` run in `away` (no ./spool there, no $DSAR_SPOOL).
        func verify(_ args: [String]) throws -> CommandResult {
            try runCommand(dsarBinary, ["verify"] + args, env: ["DSAR_SPOOL": ""], cwd: away)
        }

        // No anchor: exit 1, why and how to fix, and no "OK".
        let none = try verify([entry])
        XCTAssertEqual(none.status, 1, none.stdout + none.stderr)
        XCTAssertFalse(none.stdout.contains("OK"), none.stdout)
        for needle in ["no trust anchor", "--allowed-signers FILE", "--spool DIR", "--insecure-skip-signer", "SHA256:"]
        {
            XCTAssertTrue(none.stderr.contains(needle), "\(needle) in: \(none.stderr)")
        }

        // A foreign allowed_signers file (a key ssh-keygen made): refused.
        let other = try foreignKey(s, "other_key")
        let foreignSigners = s.base + "/foreign_signers"
        try writeFile(foreignSigners, "dsar namespaces=\"dsar-manifest,dsar-journal\" \(other.pub)\n")
        let foreign = try verify([entry, "--allowed-signers", foreignSigners])
        XCTAssertEqual(foreign.status, 1, foreign.stdout)
        XCTAssertTrue(foreign.stderr.contains("signer not allowed by \(foreignSigners)"), foreign.stderr)
        XCTAssertFalse(foreign.stdout.contains("OK"), foreign.stdout)

        // The right anchors: the spool's allowed_signers, or the spool itself; with the team key every file inside.
        let right = try verify([
            entry, "--allowed-signers", s.root + "/keys/allowed_signers", "-i", s.teamKeys + "/age.key",
        ])
        XCTAssertEqual(right.status, 0, right.stderr)
        XCTAssertTrue(right.stdout.contains("signer: dsar allowed by \(s.root)/keys/allowed_signers"), right.stdout)
        XCTAssertTrue(right.stdout.contains("OK: \(entry) verified"), right.stdout)
        XCTAssertFalse(right.stderr.contains("WARNING"), right.stderr)
        let viaSpool = try verify([entry, "--spool", s.root])
        XCTAssertEqual(viaSpool.status, 0, viaSpool.stderr)
        XCTAssertTrue(viaSpool.stdout.contains("signer: the spool's signing key"), viaSpool.stdout)

        // --insecure-skip-signer: integrity only, said loudly on stderr and in the report.
        let skip = try verify([entry, "--insecure-skip-signer"])
        XCTAssertEqual(skip.status, 0, skip.stderr)
        XCTAssertTrue(skip.stderr.contains("WARNING: signer NOT verified"), skip.stderr)
        XCTAssertTrue(skip.stdout.contains("signer: NOT verified"), skip.stdout)
        XCTAssertTrue(skip.stdout.contains("WARNING: signer NOT verified"), skip.stdout)
        XCTAssertFalse(skip.stdout.contains("OK: \(entry) verified\n"), skip.stdout)
        // It cannot be combined with an anchor that says no.
        XCTAssertNotEqual(try verify([entry, "--insecure-skip-signer", "--allowed-signers", foreignSigners]).status, 0)

        // The manifest re-signed by the foreign key (ssh-keygen -Y sign): ssh-keygen itself accepts it for
        // the foreign key, dsar refuses it against the spool's allowed_signers and the spool's key.
        let forged = away + "/forged"
        XCTAssertEqual(try runCommand("/bin/cp", ["-a", entry, forged]).status, 0)
        try sshSign(forged + "/manifest.json", key: other.path, namespace: "dsar-manifest")
        let oracle = try runCommand(
            keygen,
            [
                "-Y", "verify", "-f", foreignSigners, "-I", "dsar", "-n", "dsar-manifest", "-s",
                forged + "/manifest.json.sig",
            ],
            stdin: s.text("outbox/\(job)/manifest.json"))
        XCTAssertEqual(oracle.status, 0, "the forged signature is a valid SSHSIG: \(oracle.stderr)")
        let forgedA = try verify([forged, "--allowed-signers", s.root + "/keys/allowed_signers"])
        XCTAssertEqual(forgedA.status, 1, forgedA.stdout)
        XCTAssertTrue(forgedA.stderr.contains("signer not allowed"), forgedA.stderr)
        let forgedS = try verify([forged, "--spool", s.root])
        XCTAssertEqual(forgedS.status, 1, forgedS.stdout)
        XCTAssertTrue(forgedS.stderr.contains("which is not the trusted signing key"), forgedS.stderr)
        let forgedNone = try verify([forged])
        XCTAssertEqual(forgedNone.status, 1, forgedNone.stdout)
        XCTAssertTrue(forgedNone.stderr.contains("no trust anchor"), forgedNone.stderr)
    }

    // MARK: - 2. truncation and checkpoint files

    /// A scratch spool beside `s` holding its keys and a fresh copy of its journal.
    func scratch(_ s: TempSpool, _ name: String) throws -> String {
        let dir = s.base + "/" + name
        try? FileSystem.removeTree(dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        XCTAssertEqual(try runCommand("/bin/cp", ["-a", s.root + "/keys", dir + "/keys"]).status, 0)
        XCTAssertEqual(try runCommand("/bin/cp", ["-a", s.root + "/journal", dir + "/journal"]).status, 0)
        return dir
    }

    func auditVerify(_ spool: String, _ extra: [String] = []) throws -> CommandResult {
        try runCommand(dsarBinary, ["audit", "verify", "--spool", spool] + extra)
    }

    func testHeadDeletedAndSegmentTruncatedIsCaughtByTheCheckpointFiles() throws {
        let (s, _) = try JournalE2ETests.realJournal()
        let seg = try XCTUnwrap(trustSegments(s.root + "/journal").first)
        let lines = try trustLines(s.root + "/journal/" + seg)
        let entries = try lines.map { try JournalEntry.parse($0) }
        let cps = entries.filter { $0.type == "checkpoint" }
        XCTAssertEqual(cps.count, 2)
        let signed = cps.compactMap { trustInt($0.details, "signed_seq") }
        XCTAssertEqual(signed.count, 2)
        XCTAssertEqual(try auditVerify(s.root).status, 0)

        // Keep the first run only (up to its checkpoint entry, plus a few lines of the second run).
        let keep = cps[0].seq + 3
        XCTAssertLessThan(keep, signed[1])
        let cut = try scratch(s, "cut")
        try trustWrite(cut + "/journal/" + seg, Array(lines.prefix(keep)))
        try FileSystem.remove(cut + "/journal/HEAD")
        let r = try auditVerify(cut)
        XCTAssertEqual(r.status, 1, r.stdout)
        XCTAssertFalse(r.stdout.contains("OK"), r.stdout)
        let name = String(format: "%09d.txt", signed[1])
        for needle in [
            "journal/\(seg):\(keep): ", "the journal ends at seq \(keep)",
            "checkpoints/\(name) is a signed checkpoint of seq \(signed[1])",
            "were truncated",
        ] {
            XCTAssertTrue(r.stderr.contains(needle), "\(needle) in: \(r.stderr)")
        }

        // The later checkpoint files deleted as well: HEAD's absence is still an error, saying what it may mean.
        try FileSystem.remove(cut + "/journal/checkpoints/" + name)
        try FileSystem.remove(cut + "/journal/checkpoints/" + name + ".sig")
        let noHead = try auditVerify(cut)
        XCTAssertEqual(noHead.status, 1, noHead.stdout)
        XCTAssertTrue(noHead.stderr.contains("journal/HEAD: is missing"), noHead.stderr)
        XCTAssertTrue(noHead.stderr.contains("truncated"), noHead.stderr)
        XCTAssertTrue(noHead.stderr.contains("--witness"), noHead.stderr)
    }

    func testEditedOrResignedCheckpointFilesFail() throws {
        let (s, _) = try JournalE2ETests.realJournal()
        let names = s.list("journal/checkpoints").filter { $0.hasSuffix(".txt") }.sorted()
        XCTAssertEqual(names.count, 2)
        let name = try XCTUnwrap(names.first)
        let other = try foreignKey(s, "other_key")

        // Pristine: OK, and ssh-keygen agrees on the file.
        XCTAssertEqual(try auditVerify(s.root).status, 0)

        // The .txt edited (one hash digit changed): no longer the chain's hash.
        var d = try scratch(s, "edited")
        var cp = d + "/journal/checkpoints/" + name
        let text = s.text("journal/checkpoints/" + name)
        let hashLine = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("hash: ") })
        let last = try XCTUnwrap(hashLine.last)
        let edited = text.replacingOccurrences(
            of: String(hashLine), with: String(hashLine.dropLast()) + (last == "0" ? "1" : "0"))
        try writeFile(cp, edited, mode: 0o600)
        var r = try auditVerify(d)
        XCTAssertEqual(r.status, 1, r.stdout)
        XCTAssertTrue(r.stderr.contains("journal/checkpoints/\(name): does not match the chain"), r.stderr)
        // ssh-keygen says no to it too.
        let oracle = try runCommand(
            keygen,
            [
                "-Y", "verify", "-f", s.root + "/keys/allowed_signers", "-I", "dsar", "-n", "dsar-journal", "-s",
                cp + ".sig",
            ], stdin: edited)
        XCTAssertNotEqual(oracle.status, 0)

        // The .sig re-signed with another key (ssh-keygen -Y sign): valid SSHSIG, untrusted signer.
        d = try scratch(s, "resigned")
        cp = d + "/journal/checkpoints/" + name
        try sshSign(cp, key: other.path, namespace: "dsar-journal")
        r = try auditVerify(d)
        XCTAssertEqual(r.status, 1, r.stdout)
        XCTAssertTrue(
            r.stderr.contains("journal/checkpoints/\(name).sig: signer not trusted: signed by SHA256:"), r.stderr)
        r = try auditVerify(d, ["--allowed-signers", s.root + "/keys/allowed_signers"])
        XCTAssertEqual(r.status, 1, r.stdout)
        XCTAssertTrue(r.stderr.contains("signer not trusted"), r.stderr)
        // An allowed_signers trusting the other key accepts it: the ssh-keygen signature itself is good.
        let both = s.base + "/both"
        try writeFile(both, s.text("keys/allowed_signers") + "dsar namespaces=\"dsar-journal\" \(other.pub)\n")
        r = try auditVerify(d, ["--allowed-signers", both])
        XCTAssertEqual(r.status, 0, r.stderr)

        // A .txt without its .sig.
        d = try scratch(s, "nosig")
        try FileSystem.remove(d + "/journal/checkpoints/" + name + ".sig")
        r = try auditVerify(d)
        XCTAssertEqual(r.status, 1, r.stdout)
        XCTAssertTrue(r.stderr.contains("journal/checkpoints/\(name): has no \(name).sig"), r.stderr)

        // A .sig of another checkpoint copied over: it signs another seq, so it is INVALID here.
        d = try scratch(s, "swapped")
        XCTAssertEqual(
            try runCommand(
                "/bin/cp",
                [s.root + "/journal/checkpoints/" + names[1] + ".sig", d + "/journal/checkpoints/" + name + ".sig"]
            ).status, 0)
        r = try auditVerify(d)
        XCTAssertEqual(r.status, 1, r.stdout)
        XCTAssertTrue(r.stderr.contains("journal/checkpoints/\(name).sig: signature INVALID"), r.stderr)
    }

    // MARK: - 3. witness

    /// Two real runs on a spool whose `witness:` appends to `<base>/witness.txt`.
    func witnessedSpool() throws -> (TempSpool, String) {
        let s = try TempSpool()
        let dir = try JournalE2ETests.makeConnectors(s)
        let file = s.base + "/witness.txt"
        try s.initialize(extraConfig: "witness: cat >> '\(file)'\nwitness_timeout_seconds: 20\n")
        try s.drop("a.json", #"{"request_id": "W-1", "action": "export", "email": "alice@example.com"}"#)
        try s.drop("b.json", #"{"request_id": "W-2", "action": "export", "user_id": "733105"}"#)
        let r1 = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r1.status, 0, r1.stdout + r1.stderr)
        try s.drop("c.json", #"{"request_id": "W-3", "action": "export", "ip": "198.51.100.23"}"#)
        let r2 = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r2.status, 0, r2.stdout + r2.stderr)
        return (s, file)
    }

    func testWitnessReceivesEveryCheckpointAndCatchesTruncationAndRewrittenHistory() throws {
        let (s, file) = try witnessedSpool()
        let witnessed = try FileSystem.readFile(file)
        let records = try WitnessFile.parse(witnessed, path: file)
        let names = s.list("journal/checkpoints").filter { $0.hasSuffix(".txt") }.sorted()
        XCTAssertEqual(records.count, 2)
        XCTAssertEqual(names.count, 2)
        // Exactly the checkpoint files, message then signature, in order.
        XCTAssertEqual(
            String(decoding: witnessed, as: UTF8.self),
            names.map { s.text("journal/checkpoints/" + $0) + s.text("journal/checkpoints/" + $0 + ".sig") }.joined())
        XCTAssertEqual(s.text("journal/WITNESSED"), "\(records[1].seq)\n")
        XCTAssertEqual(try s.journal("witness.failed").count, 0)

        // Each record verifies with ssh-keygen alone, split with the README's awk line.
        let work = s.base + "/split"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let awk = try runCommand(
            "/bin/sh",
            [
                "-c",
                #"cd "$1" && awk 'NF==0{next} /^dsar-journal checkpoint$/{n++; m=1} /^-----BEGIN SSH SIGNATURE/{m=0} {print > sprintf("wit-%04d.%s", n, m ? "txt" : "txt.sig")}' "$2""#,
                "sh", work, file,
            ])
        XCTAssertEqual(awk.status, 0, awk.stderr)
        for k in 1...2 {
            let t = work + String(format: "/wit-%04d.txt", k)
            let r = try runCommand(
                keygen,
                [
                    "-Y", "verify", "-f", s.root + "/keys/allowed_signers", "-I", "dsar", "-n", "dsar-journal", "-s",
                    t + ".sig",
                ],
                stdin: String(decoding: try FileSystem.readFile(t), as: UTF8.self))
            XCTAssertEqual(r.status, 0, "ssh-keygen on witness record \(k): \(r.stdout) \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("Good \"dsar-journal\" signature for dsar"), r.stdout)
            XCTAssertEqual(try FileSystem.readFile(t), records[k - 1].message)
        }

        // Unmodified: OK against the witness.
        let ok = try auditVerify(s.root, ["--witness", file])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("; 2 witnessed checkpoints match the chain"), ok.stdout)

        let seg = try XCTUnwrap(trustSegments(s.root + "/journal").first)
        let lines = try trustLines(s.root + "/journal/" + seg)
        let entries = try lines.map { try JournalEntry.parse($0) }

        // Truncated after the first run, with HEAD rewritten to the new end and the later checkpoint files
        // deleted: nothing inside the spool shows it, the witness does.
        let keep = try XCTUnwrap(entries.first { $0.type == "checkpoint" }).seq
        XCTAssertLessThan(keep, records[1].seq)
        var d = try scratch(s, "truncated")
        try trustWrite(d + "/journal/" + seg, Array(lines.prefix(keep)))
        try writeFile(d + "/journal/HEAD", "\(entries[keep - 1].seq) \(entries[keep - 1].hash)\n", mode: 0o600)
        for n in names where Int(n.prefix(9))! > keep {
            try FileSystem.remove(d + "/journal/checkpoints/" + n)
            try FileSystem.remove(d + "/journal/checkpoints/" + n + ".sig")
        }
        XCTAssertEqual(try auditVerify(d).status, 0, "without the witness the truncation is invisible")
        var r = try auditVerify(d, ["--witness", file])
        XCTAssertEqual(r.status, 1, r.stdout)
        XCTAssertTrue(
            r.stderr.contains("journal/\(seg):\(keep): the journal ends at seq \(keep), but the witness \(file)"),
            r.stderr)
        XCTAssertTrue(
            r.stderr.contains("holds a signed checkpoint of seq \(records[1].seq): the journal was truncated"), r.stderr
        )
        // Even with HEAD and checkpoints/ deleted outright.
        try FileSystem.remove(d + "/journal/HEAD")
        try FileSystem.removeTree(d + "/journal/checkpoints")
        r = try auditVerify(d, ["--witness", file])
        XCTAssertEqual(r.status, 1, r.stdout)
        XCTAssertTrue(r.stderr.contains("the journal was truncated"), r.stderr)

        // History rewritten by someone holding the spool's signing key: an early entry changed, the chain
        // re-hashed, every checkpoint entry and file re-signed with the spool key, HEAD rewritten. The spool
        // alone verifies; the witness does not.
        d = try scratch(s, "rewritten")
        let key = try SSHEd25519Key.load(path: s.root + "/keys/signing_key")
        var forged = entries
        forged[2].time = "2001-01-01T00:00:00Z"
        forged[2].hash = forged[2].computedHash
        for k in 3..<forged.count {
            forged[k].prev = forged[k - 1].hash
            if forged[k].type == "checkpoint", let signedSeq = trustInt(forged[k].details, "signed_seq") {
                let h = forged[signedSeq - 1].hash
                let sig = try SSHSig.sign(
                    Journal.checkpointMessage(seq: signedSeq, hash: h), key: key, namespace: Journal.namespace)
                forged[k].details = trustSet(
                    trustSet(forged[k].details, "signed_hash", .string(h)), "signature", .string(sig))
                let base = d + "/journal/checkpoints/" + String(format: "%09d.txt", signedSeq)
                try writeFile(
                    base, String(decoding: Journal.checkpointMessage(seq: signedSeq, hash: h), as: UTF8.self),
                    mode: 0o600)
                try writeFile(base + ".sig", sig, mode: 0o600)
            }
            forged[k].hash = forged[k].computedHash
        }
        try trustWrite(d + "/journal/" + seg, forged.map(\.line))
        try writeFile(d + "/journal/HEAD", "\(forged.last!.seq) \(forged.last!.hash)\n", mode: 0o600)
        let alone = try auditVerify(d)
        XCTAssertEqual(alone.status, 0, "the forger's spool verifies on its own: \(alone.stderr)")
        r = try auditVerify(d, ["--witness", file])
        XCTAssertEqual(r.status, 1, r.stdout)
        let firstSigned = records[0].seq
        XCTAssertTrue(
            r.stderr.contains(
                "journal/\(seg):\(firstSigned): seq \(firstSigned) has hash \(forged[firstSigned - 1].hash)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("history was rewritten"), r.stderr)

        // A witness file that is not in the format, or whose record was re-signed by another key, fails.
        let junk = s.base + "/junk.txt"
        try writeFile(junk, "hello\n")
        r = try auditVerify(s.root, ["--witness", junk])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("\(junk):1: expected \"dsar-journal checkpoint\""), r.stderr)
        let other = try foreignKey(s, "other_key")
        let msg = s.base + "/msg.txt"
        try FileSystem.writeAtomically(msg, records[0].message, mode: 0o600)
        try sshSign(msg, key: other.path, namespace: "dsar-journal")
        let foreignWitness = s.base + "/foreign-witness.txt"
        try FileSystem.writeAtomically(
            foreignWitness, records[0].message + (try FileSystem.readFile(msg + ".sig")), mode: 0o600)
        r = try auditVerify(s.root, ["--witness", foreignWitness])
        XCTAssertEqual(r.status, 1, r.stdout)
        XCTAssertTrue(
            r.stderr.contains("\(foreignWitness):1: witnessed checkpoint of seq \(records[0].seq): signer not trusted"),
            r.stderr)
    }

    func testAFailingWitnessIsJournaledAndRetriedWithoutLosingJournalData() throws {
        let s = try TempSpool()
        let dir = try JournalE2ETests.makeConnectors(s)
        let file = s.base + "/witness.txt"
        let flag = s.base + "/witness-down"
        try writeFile(flag, "")
        // Down while the flag file exists: exits 3 with a reason on stderr. (The argv form of witness:.)
        let script = s.base + "/witness.sh"
        try writeFile(
            script, "#!/bin/sh\nif [ -e '\(flag)' ]; then echo store unreachable >&2; exit 3; fi\ncat >> '\(file)'\n",
            mode: 0o755)
        try s.initialize(extraConfig: "witness: [ \(script) ]\n")
        try s.drop("a.json", #"{"request_id": "F-1", "action": "export", "user_id": "733105"}"#)
        let r1 = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r1.status, 0, "a witness failure never fails the run: \(r1.stderr)")
        XCTAssertTrue(r1.stderr.contains("witness failed"), r1.stderr)
        XCTAssertTrue(r1.stderr.contains("store unreachable"), r1.stderr)
        let failed = try s.journal("witness.failed")
        XCTAssertEqual(failed.count, 1)
        let details = try XCTUnwrap(failed.first?["details"] as? [String: Any])
        XCTAssertTrue(
            (details["reason"] as? String ?? "").contains("exited with status 3: store unreachable"), "\(details)")
        XCTAssertFalse(FileSystem.exists(file))
        XCTAssertEqual(try auditVerify(s.root).status, 0, "the journal is whole")

        // Back up: the next run's checkpoint sends the missed one first, then its own.
        try FileSystem.remove(flag)
        try s.drop("b.json", #"{"request_id": "F-2", "action": "export", "user_id": "904217"}"#)
        let r2 = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        let records = try WitnessFile.parse(try FileSystem.readFile(file), path: file)
        let cps = try s.journal("checkpoint").compactMap { ($0["details"] as? [String: Any])?["signed_seq"] as? Int }
        XCTAssertEqual(cps.count, 2)
        XCTAssertEqual(records.map(\.seq), cps, "both checkpoints witnessed, oldest first")
        let v = try auditVerify(s.root, ["--witness", file])
        XCTAssertEqual(v.status, 0, v.stderr)
        XCTAssertTrue(v.stdout.contains("2 witnessed checkpoints"), v.stdout)
    }

    /// `dsar watch` signs a checkpoint when it stops; the witness gets it from that code path too.
    func testWatchHandsItsCheckpointToTheWitness() throws {
        let s = try TempSpool()
        let dir = try JournalE2ETests.makeConnectors(s)
        let file = s.base + "/witness.txt"
        try s.initialize(extraConfig: "witness: cat >> '\(file)'\n")
        let w = try s.start(["watch", "--settle", "0", "--rescan", "60", "--connectors", dir])
        addTeardownBlock {
            if w.process.isRunning {
                w.signal(SIGKILL)
                _ = try? w.wait(timeout: 5)
            }
        }
        XCTAssertTrue(waitUntil(timeout: 10) { w.stderrSoFar().contains("\"message\":\"watching\"") }, w.stderrSoFar())
        try s.drop("a.json", #"{"request_id": "WW-1", "action": "export", "user_id": "733105"}"#)
        XCTAssertTrue(
            waitUntil(timeout: 30) { ((try? s.records()) ?? []).contains { $0.status == .completed } }, w.stderrSoFar())
        w.signal(SIGTERM)
        let r = try w.wait(timeout: 30)
        XCTAssertEqual(r.status, 0, r.stderr.suffix(2000).description)
        let records = try WitnessFile.parse(try FileSystem.readFile(file), path: file)
        let cps = try s.journal("checkpoint").compactMap { ($0["details"] as? [String: Any])?["signed_seq"] as? Int }
        XCTAssertFalse(cps.isEmpty)
        XCTAssertEqual(records.map(\.seq), cps)
        let v = try auditVerify(s.root, ["--witness", file])
        XCTAssertEqual(v.status, 0, v.stderr)
    }
}

// MARK: - helpers

private func trustSegments(_ dir: String) throws -> [String] {
    try FileSystem.list(dir).filter { $0.hasSuffix(".jsonl") && $0.first?.isNumber == true }
}

private func trustLines(_ path: String) throws -> [[UInt8]] {
    let data = try FileSystem.readFile(path)
    var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false).map { Array($0) }
    if data.last == 0x0A || data.isEmpty { lines.removeLast() }
    return lines
}

private func trustWrite(_ path: String, _ lines: [[UInt8]]) throws {
    chmod(path, 0o600)
    try Data(lines.flatMap { $0 + [0x0A] }).write(to: URL(fileURLWithPath: path))
}

private func trustInt(_ v: JSONValue, _ key: String) -> Int? {
    if case .number(let n)? = v[key] { return Int(n) }
    return nil
}

private func trustSet(_ v: JSONValue, _ key: String, _ new: JSONValue) -> JSONValue {
    guard case .object(var members) = v else { return v }
    for k in members.indices where members[k].key == key { members[k].value = new }
    return .object(members)
}
