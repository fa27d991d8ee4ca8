import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Erasure of logs that other processes keep writing to, through the real binary: no line the
/// writers wrote is lost, the subject's lines are redacted, `reopen:` runs, and the rewritten file
/// keeps owner, group, mode and ACL (getfacl as the oracle).
final class LiveLogErasureE2ETests: XCTestCase {

    /// A writer that appends a numbered line every millisecond until SIGTERM, then prints the count.
    /// `reopen`: opens the log (O_APPEND) for each line, like a logger that reopens; `hold`: keeps one
    /// descriptor open and reopens the path on SIGHUP. Lines mention the subject only while the
    /// descriptor written to is the original file (its inode), so each of them was written before
    /// the erasure replaced it and must end up redacted.
    static let writer = #"""
        import os, signal, sys, time
        path, mode = sys.argv[1], sys.argv[2]
        stop = False
        hup = False
        def on_term(*_):
            global stop
            stop = True
        def on_hup(*_):
            global hup
            hup = True
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGHUP, on_hup)
        original = os.stat(path).st_ino
        fd = os.open(path, os.O_WRONLY | os.O_APPEND) if mode == "hold" else -1
        n = 0
        while not stop:
            if mode == "hold":
                if hup:
                    os.close(fd)
                    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                    hup = False
                f = fd
            else:
                f = os.open(path, os.O_WRONLY | os.O_APPEND)
            old = os.fstat(f).st_ino == original
            who = "alice@example.com" if old and n % 7 == 0 else "bob@example.org"
            os.write(f, ("live seq=%d user=%s\n" % (n, who)).encode())
            if mode != "hold":
                os.close(f)
            n += 1
            time.sleep(0.001)
        print(n, flush=True)
        """#

    func python() throws -> String {
        guard let p = which("python3") else { throw XCTSkip("python3 is not installed (it plays the log writer)") }
        return p
    }

    /// `lines` old lines, every 10th about the subject.
    func oldLines(_ lines: Int) -> String {
        var text = ""
        text.reserveCapacity(lines * 60)
        for k in 0..<lines {
            text += "old seq=\(k) user=\(k % 10 == 0 ? "alice@example.com" : "carol@example.net") GET /page\n"
        }
        return text
    }

    /// A log of `lines` old lines and its connector (`extra` appended to its YAML), in an initialised spool.
    func makeLog(
        _ s: TempSpool, lines: Int, extra: String = "", afterLog: (String) throws -> String = { _ in "" }
    ) throws -> (dir: String, log: String) {
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/live.log", oldLines(lines))
        let more = try afterLog(dir + "/data/live.log")
        try writeFile(
            dir + "/live.yaml",
            "name: live\ntype: log\npaths: [ data/live.log ]\nmatch: [ email ]\nerase: redact\n" + extra + more)
        try s.initialize()
        return (dir, dir + "/data/live.log")
    }

    /// Every `live seq=N` for N in 0..<count exactly once; the old lines all there; no subject left.
    func assertNoLineLost(
        _ path: String, written count: Int, oldLines: Int, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var live = [Int](repeating: 0, count: count)
        var old = 0
        for l in text.split(separator: "\n") {
            if l.hasPrefix("live seq=") {
                let n = Int(l.dropFirst(9).prefix { $0.isNumber }) ?? -1
                XCTAssert(n >= 0 && n < count, "unexpected line \(l)", file: file, line: line)
                if n >= 0 && n < count { live[n] += 1 }
            } else if l.hasPrefix("old seq=") {
                old += 1
            }
        }
        let missing = live.indices.filter { live[$0] == 0 }
        let doubled = live.indices.filter { live[$0] > 1 }
        XCTAssertEqual(missing.count, 0, "lines of the writer lost: \(missing.prefix(20))", file: file, line: line)
        XCTAssertEqual(doubled.count, 0, "lines of the writer doubled: \(doubled.prefix(20))", file: file, line: line)
        XCTAssertEqual(old, oldLines, "old lines", file: file, line: line)
        XCTAssertFalse(text.contains("alice@example.com"), "the subject is still in the log", file: file, line: line)
        XCTAssert(
            text.contains("live seq=0 user=[REDACTED]"), "the writer's first line (about the subject) is redacted",
            file: file, line: line)
    }

    func erase(
        _ s: TempSpool, _ dir: String, exit: Int32 = 0, file: StaticString = #filePath, line: UInt = #line
    ) throws -> JobRecord {
        try eraseRun(s, dir, exit: exit, file: file, line: line).0
    }

    func eraseRun(
        _ s: TempSpool, _ dir: String, exit: Int32 = 0, file: StaticString = #filePath, line: UInt = #line
    ) throws -> (JobRecord, CommandResult) {
        try s.drop("d.json", #"{"request_id": "D-1", "action": "delete", "subject": {"email": "alice@example.com"}}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, exit, r.stdout + r.stderr, file: file, line: line)
        return (try XCTUnwrap(try s.records().first, file: file, line: line), r)
    }

    func testWriterThatReopensPerLineLosesNoLine() throws {
        let py = try python()
        let s = try TempSpool()
        let (dir, log) = try makeLog(s, lines: 150_000)
        let w = try launch(py, ["-c", Self.writer, log, "reopen"])
        XCTAssert(
            waitUntil(timeout: 10) {
                ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("live seq=20 ")
            })
        let (rec, run) = try eraseRun(s, dir)
        // It did grow during the rewrite (the old code left such a file untouched, FAILED).
        XCTAssertTrue(run.stderr.contains("lines appended during the rewrite were processed too"), run.stderr)
        usleep(300_000)
        w.signal(SIGTERM)
        let out = try w.wait(timeout: 20)
        XCTAssertEqual(out.status, 0, out.stderr)
        let count = try XCTUnwrap(Int(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        try assertNoLineLost(log, written: count, oldLines: 150_000)
        XCTAssertEqual(leftoverTempFiles(s), [])
    }

    func testWriterThatHoldsItsDescriptorReopensOnTheCommandAndLosesNoLine() throws {
        let py = try python()
        let s = try TempSpool()
        var writer: Child?
        defer { if let w = writer, w.process.isRunning { w.signal(SIGKILL) } }
        let (dir, log) = try makeLog(s, lines: 150_000) { log in
            writer = try launch(py, ["-c", Self.writer, log, "hold"])
            return "reopen: kill -HUP \(writer!.pid)\nreopen_timeout: 10\n"
        }
        let w = try XCTUnwrap(writer)
        XCTAssert(
            waitUntil(timeout: 10) {
                ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("live seq=20 ")
            })
        let (rec, run) = try eraseRun(s, dir)
        // Between the rename and its SIGHUP the writer wrote into the replaced file: taken over.
        XCTAssertTrue(
            run.stderr.contains("lines written into the replaced file were appended to the new one"), run.stderr)
        usleep(300_000)
        w.signal(SIGTERM)
        let out = try w.wait(timeout: 20)
        XCTAssertEqual(out.status, 0, out.stderr)
        let count = try XCTUnwrap(Int(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        try assertNoLineLost(log, written: count, oldLines: 150_000)
    }

    func testFailingReopenCommandMakesTheJobPartial() throws {
        let s = try TempSpool()
        let (dir, log) = try makeLog(
            s, lines: 100, extra: "reopen: [ /bin/sh, -c, 'echo no such service >&2; exit 3' ]\n")
        let rec = try erase(s, dir, exit: 1)
        XCTAssertEqual(rec.status, .partial)
        XCTAssert(
            (rec.error ?? "").contains("reopen command failed (exited with status 3: no such service)"), rec.error ?? ""
        )
        // The erasure itself happened.
        XCTAssertFalse(try String(contentsOfFile: log, encoding: .utf8).contains("alice@example.com"))
    }

    func testOwnerGroupModeAndACLArePreserved() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to give the log another owner (chown)") }
        guard let setfacl = which("setfacl"), let getfacl = which("getfacl") else {
            throw XCTSkip("setfacl/getfacl are not installed (Debian package acl)")
        }
        let s = try TempSpool()
        let (dir, log) = try makeLog(s, lines: 50)
        XCTAssertEqual(chown(log, 65534, 65534), 0)
        XCTAssertEqual(chmod(log, 0o664), 0)
        let acl = try runCommand(setfacl, ["-m", "u:nobody:r", log])
        if acl.status != 0 { throw XCTSkip("the filesystem of \(log) does not take ACLs: \(acl.stderr)") }
        let aclBefore = try runCommand(getfacl, ["-p", log])
        var before = stat()
        XCTAssertEqual(stat(log, &before), 0)
        let rec = try erase(s, dir)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        var after = stat()
        XCTAssertEqual(stat(log, &after), 0)
        XCTAssertNotEqual(after.st_ino, before.st_ino, "the file was rewritten")
        XCTAssertEqual(after.st_uid, 65534)
        XCTAssertEqual(after.st_gid, 65534)
        XCTAssertEqual(after.st_mode & 0o7777, 0o664)
        let aclAfter = try runCommand(getfacl, ["-p", log])
        XCTAssertEqual(aclAfter.stdout, aclBefore.stdout)
        XCTAssert(aclAfter.stdout.contains("user:nobody:r--"), aclAfter.stdout)
        XCTAssertFalse(try String(contentsOfFile: log, encoding: .utf8).contains("alice@example.com"))
    }

    func testReopenConfigIsChecked() throws {
        let s = try TempSpool()
        let (dir, _) = try makeLog(s, lines: 1)
        try writeFile(dir + "/empty.yaml", "name: empty\ntype: log\npaths: [ data/live.log ]\nreopen: \"\"\n")
        try writeFile(
            dir + "/slow.yaml",
            "name: slow\ntype: log\npaths: [ data/live.log ]\nreopen: [ /bin/true ]\nreopen_timeout: 0\n")
        try writeFile(
            dir + "/csv.yaml",
            "name: csv\ntype: csv\npaths: [ data/live.log ]\ncolumns: { email: email }\nreopen: /bin/true\n")
        try writeFile(
            dir + "/gone.yaml", "name: gone\ntype: log\npaths: [ data/live.log ]\nreopen: [ bin/reopen-nginx, now ]\n")
        let r = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(r.status, 78, r.stdout + r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/empty.yaml:4: reopen: is empty"), r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/slow.yaml:5: reopen_timeout: expected a number of seconds"), r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/csv.yaml:5: reopen: unknown key"), r.stderr)
        XCTAssertTrue(
            r.stderr.contains("\(dir)/gone.yaml:4: reopen: \(dir)/bin/reopen-nginx is not an executable file"), r.stderr
        )
    }

    /// dsar not root, the log owned by root: the rewritten file could not get the owner, so the
    /// file is left untouched and the job FAILED (its only source) naming why (never a file with another owner).
    func testOwnerThatCannotBeCopiedFailsThatFileUntouched() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to run dsar as another user (setpriv)") }
        guard let setpriv = which("setpriv") else { throw XCTSkip("setpriv is not installed (util-linux)") }
        let s = try TempSpool()
        let (dir, log) = try makeLog(s, lines: 20)
        try s.drop("d.json", #"{"request_id": "D-1", "action": "delete", "subject": {"email": "alice@example.com"}}"#)
        // Everything belongs to nobody except the log (root's, 0644) and the binary.
        XCTAssertEqual(try runCommand("/bin/chown", ["-R", "65534:65534", s.base]).status, 0)
        XCTAssertEqual(chown(log, 0, 0), 0)
        XCTAssertEqual(chmod(log, 0o644), 0)
        let before = try String(contentsOfFile: log, encoding: .utf8)
        var st0 = stat()
        XCTAssertEqual(stat(log, &st0), 0)
        let r = try runCommand(
            setpriv,
            [
                "--reuid=65534", "--regid=65534", "--clear-groups", dsarBinary, "run", "--settle", "0", "--connectors",
                dir, "--spool", s.root,
            ],
            env: ["HOME": s.base])
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .failed, "nothing could be erased: " + r.stdout + r.stderr)
        XCTAssertTrue(
            (rec.error ?? "").contains(
                "cannot give the rewritten file the owner 0:0 of the original: run dsar as root or as the file's owner"),
            rec.error ?? "")
        var st1 = stat()
        XCTAssertEqual(stat(log, &st1), 0)
        XCTAssertEqual(st1.st_ino, st0.st_ino, "left untouched")
        XCTAssertEqual(st1.st_uid, 0)
        XCTAssertEqual(try String(contentsOfFile: log, encoding: .utf8), before)
        XCTAssertEqual(try FileSystem.list(dir + "/data").filter { $0.hasPrefix(".") }, [], "no temp file left")
    }

    /// A writer that keeps the log open and no `reopen:`: its lines after the rename would go into
    /// the replaced file, so the job says so (PARTIAL, naming the process) instead of claiming all is well;
    /// a reader (`tail -f`) that keeps it open is no such problem.
    func testWriterThatNeverReopensIsReported() throws {
        let py = try python()
        let s = try TempSpool()
        var writer: Child?
        var reader: Child?
        defer {
            if let w = writer, w.process.isRunning { w.signal(SIGKILL) }
            if let r = reader, r.process.isRunning { r.signal(SIGKILL) }
        }
        let (dir, log) = try makeLog(s, lines: 1000) { log in
            writer = try launch(py, ["-c", Self.writer, log, "hold"])
            reader = try launch("/usr/bin/tail", ["-f", log])
            return ""
        }
        XCTAssert(
            waitUntil(timeout: 10) {
                ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("live seq=20 ")
            })
        let rec = try erase(s, dir, exit: 1)
        XCTAssertEqual(rec.status, .partial)
        let pid = try XCTUnwrap(writer).pid
        XCTAssertTrue((rec.error ?? "").contains("but process \(pid) ("), rec.error ?? "")
        XCTAssertTrue(
            (rec.error ?? "").contains(") still writes into the replaced file (set `reopen:` on the connector)"),
            rec.error ?? "")
        XCTAssertFalse((rec.error ?? "").contains("(tail)"), rec.error ?? "")
        XCTAssertFalse(try String(contentsOfFile: log, encoding: .utf8).contains("alice@example.com"))
    }
}
