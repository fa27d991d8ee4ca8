import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `GET /dsar/{jobId}/download` and `GET /files/{token}` through the real `dsar serve` on loopback,
/// with curl as the client and `age`, `ssh-keygen`, `dsar verify` and `sha256sum` as oracles.
final class ServeDownloadE2ETests: XCTestCase {
    static let serveNone = "serve:\n  auth: none\n"

    func tool(_ name: String) throws -> String {
        guard let p = which(name) else {
            throw XCTSkip("this test uses the real `\(name)` as an oracle; it is not installed")
        }
        return p
    }

    func bytes(_ path: String) throws -> [UInt8] {
        guard let d = FileManager.default.contents(atPath: path) else { throw TestFailure("cannot read \(path)") }
        return Array(d)
    }

    /// `sha256sum FILE`'s hex digest.
    func sha256sum(_ path: String) throws -> String {
        let r = try runCommand(try tool("sha256sum"), [path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return String(r.stdout.prefix(64))
    }

    /// curl with `args` (the URL included); the body into `out` (if given), the last response's
    /// status and lower-cased headers.
    func curlFile(_ args: [String], out: String? = nil) throws -> (status: Int, headers: [String: String]) {
        let head = NSTemporaryDirectory() + "dsar-curl-\(UUID().uuidString).h"
        defer { unlink(head) }
        let r = try runCommand(
            "/usr/bin/curl",
            ["-sS", "--max-time", "60", "-D", head] + (out.map { ["-o", $0] } ?? ["-o", "/dev/null"]) + args,
            timeout: 70)
        guard r.status == 0 else { throw TestFailure("curl \(args) failed (\(r.status)): \(r.stderr)") }
        let text = String(decoding: FileManager.default.contents(atPath: head) ?? Data(), as: UTF8.self)
        let block = text.components(separatedBy: "\r\n\r\n").filter { $0.hasPrefix("HTTP/") }.last ?? ""
        let lines = block.components(separatedBy: "\r\n")
        var fields: [String: String] = [:]
        for l in lines.dropFirst() {
            guard let c = l.firstIndex(of: ":") else { continue }
            fields[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        return (Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0, fields)
    }

    /// A spool whose one CSV source holds many rows of the subject (a bundle of several chunks),
    /// one request submitted over HTTP and run by `dsar run`: the spool, the server, the job id.
    func publishedExport(extraConfig: String = "") throws -> (TempSpool, ServeProcess, String) {
        let spool = try TempSpool()
        var csv = "email,user_id,note\n"
        var rng = SystemRandomNumberGenerator()
        for k in 0..<20_000 {
            let noise = (0..<4).map { _ in String(UInt64.random(in: 0...UInt64.max, using: &rng), radix: 16) }
            csv += "alice@example.com,12345,row \(k) \(noise.joined(separator: " "))\n"
        }
        try writeFile(spool.base + "/connectors/data/customers.csv", csv)
        try writeFile(
            spool.base + "/connectors/customers.yaml",
            "name: customers\ntype: csv\npaths: [ data/customers.csv ]\ncolumns: { email: email, user_id: user_id }\n")
        try spool.initialize(extraConfig: Self.serveNone + extraConfig)
        let server = try ServeProcess(spool)
        let sub = try server.submit(#"{"email": "alice@example.com", "action": "export"}"#)
        XCTAssertEqual(sub.status, 202, sub.body)
        let jobID = try XCTUnwrap(try sub.json()["jobId"] as? String)
        // Not published yet: 404, a problem document like every other error.
        let early = try server.curl("GET", "/dsar/\(jobID)/download")
        XCTAssertEqual(early.status, 404, early.body)
        XCTAssertEqual(early.headers["content-type"], "application/problem+json")
        XCTAssertTrue(try (early.json()["detail"] as? String ?? "").contains("PENDING"), early.body)
        let run = try spool.dsar(["run", "--settle", "0.2"], timeout: 180)
        XCTAssertEqual(run.status, 0, "stdout: \(run.stdout)\nstderr: \(run.stderr)")
        XCTAssertEqual(try spool.records().first?.status, .completed)
        return (spool, server, jobID)
    }

    /// The `/files/{token}` path a download answers with (checked: 302, Location, JSON body).
    func link(_ server: ServeProcess, _ jobID: String, file: String? = nil) throws -> String {
        let r = try server.curl("GET", "/dsar/\(jobID)/download" + (file.map { "?file=" + $0 } ?? ""))
        XCTAssertEqual(r.status, 302, r.body)
        let location = try XCTUnwrap(r.headers["location"], "\(r.headers)")
        XCTAssertTrue(location.hasPrefix("/files/"), location)
        XCTAssertEqual(r.headers["cache-control"], "no-store")
        let doc = try r.json()
        XCTAssertEqual(doc["href"] as? String, location)
        XCTAssertEqual(doc["jobId"] as? String, jobID)
        XCTAssertEqual(doc["file"] as? String, file ?? "bundle.zip.age")
        XCTAssertNotNil(Timestamp.parse(doc["expiresAt"] as? String ?? ""), r.body)
        return location
    }

    func testDownloadRedirectsToASignedLinkThatAgeAndSSHKeygenAccept() throws {
        let (spool, server, jobID) = try publishedExport()
        let entry = spool.root + "/outbox/" + jobID
        let dl = spool.base + "/dl/" + jobID
        try FileManager.default.createDirectory(atPath: dl, withIntermediateDirectories: true)

        // curl -L follows the 302 without any credentials and gets the bundle, byte for byte.
        let got = try curlFile(["-L", server.baseURL + "/dsar/\(jobID)/download"], out: dl + "/bundle.zip.age")
        XCTAssertEqual(got.status, 200)
        XCTAssertEqual(got.headers["content-type"], "application/octet-stream")
        XCTAssertEqual(got.headers["accept-ranges"], "bytes")
        let bundle = try bytes(entry + "/bundle.zip.age")
        XCTAssertGreaterThan(bundle.count, 400_000, "the bundle should span several chunks")
        XCTAssertEqual(got.headers["content-length"], String(bundle.count))
        XCTAssertEqual(try bytes(dl + "/bundle.zip.age"), bundle)
        // The ETag is the hash the signed manifest states for the bundle, and the file's real hash.
        let manifest = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(try bytes(entry + "/manifest.json"))) as? [String: Any])
        let stated = try XCTUnwrap((manifest["bundle"] as? [String: Any])?["sha256"] as? String)
        XCTAssertEqual(got.headers["etag"], "\"\(stated)\"")
        XCTAssertEqual(try sha256sum(dl + "/bundle.zip.age"), stated)

        for file in ["manifest.json", "manifest.json.sig"] {
            let r = try curlFile(["-L", server.baseURL + "/dsar/\(jobID)/download?file=\(file)"], out: dl + "/" + file)
            XCTAssertEqual(r.status, 200, file)
            XCTAssertEqual(try bytes(dl + "/" + file), try bytes(entry + "/" + file), file)
            XCTAssertEqual(r.headers["etag"], "\"\(try sha256sum(entry + "/" + file))\"", file)
            XCTAssertEqual(
                r.headers["content-type"], file == "manifest.json" ? "application/json" : "application/octet-stream")
        }

        // The real age opens the downloaded bundle with the team's key; ssh-keygen and dsar verify
        // accept the downloaded manifest and its signature.
        let zip = spool.base + "/bundle.zip"
        let age = try runCommand(
            try tool("age"), ["-d", "-i", spool.teamKeys + "/age.key", "-o", zip, dl + "/bundle.zip.age"])
        XCTAssertEqual(age.status, 0, age.stderr)
        XCTAssertEqual(Array(try bytes(zip).prefix(4)), [0x50, 0x4B, 0x03, 0x04], "a ZIP inside")
        let keygen = try runCommand(
            "/bin/sh",
            [
                "-c", "exec \"$0\" -Y verify -f \"$1\" -I dsar -n dsar-manifest -s \"$2\" < \"$3\"",
                try tool("ssh-keygen"), spool.root + "/keys/allowed_signers", dl + "/manifest.json.sig",
                dl + "/manifest.json",
            ])
        XCTAssertEqual(keygen.status, 0, keygen.stdout + keygen.stderr)
        let verify = try spool.dsar(
            [
                "verify", dl, "--allowed-signers", spool.root + "/keys/allowed_signers", "-i",
                spool.teamKeys + "/age.key",
            ])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)

        // The subject's copy exists only after dsar deliver.
        let noCopy = try server.curl("GET", "/dsar/\(jobID)/download?file=subject.zip.age")
        XCTAssertEqual(noCopy.status, 404, noCopy.body)
        XCTAssertTrue(try (noCopy.json()["detail"] as? String ?? "").contains("dsar deliver"), noCopy.body)
        let bad = try server.curl("GET", "/dsar/\(jobID)/download?file=..%2Fkeys%2Fpseudonym.key")
        XCTAssertEqual(bad.status, 400, bad.body)
        XCTAssertEqual((try bad.json()["errors"] as? [[String: String]])?.first?["field"], "file")

        // Each link handed out is journaled before it is answered: which file, until when, to whom
        // (null: auth none); a refused ask (404, 400) is not a grant. The chain stays valid with the
        // server's entries between those of dsar run.
        let grants = try spool.journal("download.granted")
        XCTAssertEqual(
            grants.compactMap { ($0["details"] as? [String: Any])?["file"] as? String },
            ["bundle.zip.age", "manifest.json", "manifest.json.sig"])
        for g in grants {
            XCTAssertEqual(g["job_id"] as? String, jobID)
            let d = try XCTUnwrap(g["details"] as? [String: Any])
            XCTAssertTrue(d["principal"] is NSNull, "\(d)")
            let expires = try XCTUnwrap(d["expires"] as? String)
            let left = try XCTUnwrap(Timestamp.parse(expires)).timeIntervalSinceNow
            XCTAssertTrue((3000...3601).contains(left), "expires \(expires): the default is 1 h")
        }
        let audit = try spool.dsar(["audit", "verify"])
        XCTAssertEqual(audit.status, 0, audit.stdout + audit.stderr)

        let stop = try server.stop()
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertFalse(stop.stderr.contains("alice"), "no personal data in the log")
        XCTAssertFalse(stop.stderr.contains("/files/"), "no link (a credential) in the log")
    }

    func testRangesResumeAndConditionalRequests() throws {
        let (spool, server, jobID) = try publishedExport()
        let bundle = try bytes(spool.root + "/outbox/\(jobID)/bundle.zip.age")
        let size = bundle.count
        let url = server.baseURL + (try link(server, jobID))
        let part = spool.base + "/part"

        // The first 100 bytes.
        var r = try curlFile(["-H", "Range: bytes=0-99", url], out: part)
        XCTAssertEqual(r.status, 206)
        XCTAssertEqual(r.headers["content-range"], "bytes 0-99/\(size)")
        XCTAssertEqual(r.headers["content-length"], "100")
        XCTAssertEqual(try bytes(part), Array(bundle[0..<100]))
        // A suffix: the last 500 bytes; an open end; an end beyond the file is clamped.
        r = try curlFile(["-H", "Range: bytes=-500", url], out: part)
        XCTAssertEqual(r.status, 206)
        XCTAssertEqual(r.headers["content-range"], "bytes \(size - 500)-\(size - 1)/\(size)")
        XCTAssertEqual(try bytes(part), Array(bundle[(size - 500)...]))
        r = try curlFile(["-H", "Range: bytes=\(size - 10)-\(size + 1000)", url], out: part)
        XCTAssertEqual(r.status, 206)
        XCTAssertEqual(try bytes(part), Array(bundle[(size - 10)...]))
        // Unsatisfiable: 416 with the size.
        r = try curlFile(["-H", "Range: bytes=\(size)-", url])
        XCTAssertEqual(r.status, 416)
        XCTAssertEqual(r.headers["content-range"], "bytes */\(size)")
        XCTAssertEqual(r.headers["content-type"], "application/problem+json")

        // A resumed download (curl -C -) after the first 300,001 bytes equals the whole file.
        let resumed = spool.base + "/resumed.zip.age"
        try Data(bundle[0..<300_001]).write(to: URL(fileURLWithPath: resumed))
        r = try curlFile(["-C", "-", url], out: resumed)
        XCTAssertEqual(r.status, 206)
        XCTAssertEqual(r.headers["content-range"], "bytes 300001-\(size - 1)/\(size)")
        XCTAssertEqual(try bytes(resumed), bundle)
        // And two ranges concatenated, too.
        let a = spool.base + "/a"
        let b = spool.base + "/b"
        XCTAssertEqual(try curlFile(["-r", "0-123456", url], out: a).status, 206)
        XCTAssertEqual(try curlFile(["-r", "123457-", url], out: b).status, 206)
        XCTAssertEqual(try bytes(a) + bytes(b), bundle)

        // If-None-Match with the ETag: 304 without a body; another tag: the file.
        let etag = try XCTUnwrap(try curlFile([url]).headers["etag"])
        unlink(part)
        r = try curlFile(["-H", "If-None-Match: \(etag)", url], out: part)
        XCTAssertEqual(r.status, 304)
        XCTAssertEqual(r.headers["etag"], etag)
        XCTAssertEqual((try? bytes(part)) ?? [], [], "a 304 has no body")
        XCTAssertEqual(try curlFile(["-H", "If-None-Match: \"other\", W/\(etag)", url]).status, 304)
        XCTAssertEqual(try curlFile(["-H", "If-None-Match: \"other\"", url]).status, 200)
        // If-Range with another tag: the whole file, not the range.
        r = try curlFile(["-H", "Range: bytes=0-99", "-H", "If-Range: \"other\"", url], out: part)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(try bytes(part).count, size)
        // HEAD: the headers, no body.
        r = try curlFile(["-I", url])
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.headers["content-length"], String(size))
        XCTAssertEqual(try server.stop().status, 0)
    }

    func testExpiredAlteredAndTraversingTokensAreRefused() throws {
        let (spool, server, jobID) = try publishedExport()
        let path = try link(server, jobID)
        let token = String(path.dropFirst("/files/".count))
        XCTAssertEqual(try curlFile([server.baseURL + path]).status, 200)

        func refused(
            _ p: String, _ why: String, extra: [String] = [], file: StaticString = #filePath, line: UInt = #line
        )
            throws
        {
            let out = spool.base + "/refused"
            let r = try curlFile(extra + [server.baseURL + p], out: out)
            XCTAssertEqual(r.status, 403, "\(why): \(p)", file: file, line: line)
            XCTAssertEqual(r.headers["content-type"], "application/problem+json", why, file: file, line: line)
            let body = String(decoding: try bytes(out), as: UTF8.self)
            XCTAssertFalse(body.contains(token), "a problem never echoes the token", file: file, line: line)
        }
        // Every single character changed: refused (the MAC, or the shape).
        let chars = Array(token)
        for k in stride(from: 0, to: chars.count, by: 7) {
            var c = chars
            c[k] = c[k] == "A" ? "B" : "A"
            try refused("/files/" + String(c), "altered at \(k)")
        }
        try refused("/files/" + token.dropLast(), "truncated")
        try refused("/files/" + token + "A", "extended")
        try refused("/files/..%2F..%2Fkeys%2Fpseudonym.key", "traversal")
        try refused("/files/%2e%2e%2fconfig.yaml", "encoded traversal")
        try refused("/files/" + String(repeating: ".", count: token.count), "dots")
        try refused("/files/" + token.prefix(token.count - 20) + "%2F..%2F..%2F..%2Fkeys", "token prefix and traversal")
        // Unencoded traversal never reaches a file outside the entry.
        let key = spool.text("keys/pseudonym.key").trimmingCharacters(in: .whitespacesAndNewlines)
        for p in ["/files/../keys/pseudonym.key", "/files/" + token + "/../../../keys/pseudonym.key"] {
            let out = spool.base + "/trav"
            let r = try curlFile(["--path-as-is", server.baseURL + p], out: out)
            XCTAssertNotEqual(r.status, 200, p)
            XCTAssertFalse(String(decoding: try bytes(out), as: UTF8.self).contains(key), p)
        }

        // Expired: a server whose clock (DSAR_NOW) is two hours ahead refuses the link made now
        // (download_ttl 3600), and one 30 minutes ahead still takes it.
        func clocked(_ seconds: Double) throws -> ServeProcess {
            try ServeProcess(spool, env: ["DSAR_NOW": Timestamp.format(Date().addingTimeInterval(seconds))])
        }
        let later = try clocked(7200)
        let expired = try curlFile([later.baseURL + path], out: spool.base + "/expired")
        XCTAssertEqual(expired.status, 403)
        let problem = String(decoding: try bytes(spool.base + "/expired"), as: UTF8.self)
        XCTAssertTrue(problem.contains("expired at"), problem)
        XCTAssertEqual(try later.stop().status, 0)
        let soon = try clocked(1800)
        XCTAssertEqual(try curlFile([soon.baseURL + path]).status, 200)
        XCTAssertEqual(try soon.stop().status, 0)

        // A symlink put in the entry after the link was made is refused, never followed.
        let sigLink = try link(server, jobID, file: "manifest.json.sig")
        let sig = spool.root + "/outbox/\(jobID)/manifest.json.sig"
        XCTAssertEqual(rename(sig, sig + ".orig"), 0)
        XCTAssertEqual(symlink(spool.root + "/keys/pseudonym.key", sig), 0)
        let out = spool.base + "/sym"
        XCTAssertEqual(try curlFile([server.baseURL + sigLink], out: out).status, 403)
        XCTAssertFalse(String(decoding: try bytes(out), as: UTF8.self).contains(key))
        let fresh = try server.curl("GET", "/dsar/\(jobID)/download?file=manifest.json.sig")
        XCTAssertEqual(fresh.status, 403, fresh.body)
        XCTAssertFalse(fresh.body.contains(key))
        unlink(sig)
        XCTAssertEqual(rename(sig + ".orig", sig), 0)

        // The entry withdrawn (as retry or retention do: renamed away): 410; back, the link works.
        let entry = spool.root + "/outbox/" + jobID
        XCTAssertEqual(rename(entry, spool.root + "/outbox/.\(jobID).expired"), 0)
        XCTAssertEqual(try curlFile([server.baseURL + path]).status, 410)
        XCTAssertEqual(try server.curl("GET", "/dsar/\(jobID)/download").status, 404)
        XCTAssertEqual(rename(spool.root + "/outbox/.\(jobID).expired", entry), 0)
        XCTAssertEqual(try curlFile([server.baseURL + path]).status, 200)
        // An entry published again with another manifest (a new attempt): the old link is gone.
        let manifest = entry + "/manifest.json"
        let original = try bytes(manifest)
        try FileSystem.writeAtomically(manifest, original + Array(" ".utf8), mode: 0o640)
        XCTAssertEqual(try curlFile([server.baseURL + path]).status, 410)
        try FileSystem.writeAtomically(manifest, original, mode: 0o640)
        XCTAssertEqual(try curlFile([server.baseURL + path]).status, 200)
        let stop = try server.stop()
        XCTAssertEqual(stop.status, 0)
        XCTAssertFalse(stop.stderr.contains(token), "the token is a credential: never in the log")
    }

    func testARetriedJobsOldLinkIsGoneAndTheSubjectCopyIsServedWithItsRecordedHash() throws {
        // One readable source of the subject and one that cannot be read (a directory where the
        // CSV should be): the export is PARTIAL, published, and can be retried.
        let spool = try TempSpool()
        try writeFile(spool.base + "/connectors/data/customers.csv", "email,user_id\nalice@example.com,12345\n")
        try writeFile(
            spool.base + "/connectors/customers.yaml",
            "name: customers\ntype: csv\npaths: [ data/customers.csv ]\ncolumns: { email: email, user_id: user_id }\n")
        try FileManager.default.createDirectory(
            atPath: spool.base + "/connectors/data/cards.csv", withIntermediateDirectories: true)
        try writeFile(
            spool.base + "/connectors/cards.yaml",
            "name: cards\ntype: csv\npaths: [ data/cards.csv ]\ncolumns: { email: email }\n")
        try spool.initialize(extraConfig: Self.serveNone)
        let server = try ServeProcess(spool)
        let sub = try server.submit(#"{"email": "alice@example.com", "action": "export"}"#)
        let jobID = try XCTUnwrap(try sub.json()["jobId"] as? String)
        XCTAssertEqual(
            try spool.dsar(["run", "--settle", "0.2"], timeout: 120).status, 1, "exit 1: a job ended partial")
        XCTAssertEqual(try spool.records().first?.status, .partial)

        // dsar deliver makes the subject's copy: served with the hash the record states.
        let deliver = try spool.dsar(["deliver", jobID, "--identity", spool.teamKeys + "/age.key"], timeout: 120)
        XCTAssertEqual(deliver.status, 0, deliver.stderr)
        let delivery = try XCTUnwrap(try spool.records().first?.deliveries?.last)
        let copy = spool.base + "/subject.zip.age"
        let got = try curlFile(["-L", server.baseURL + "/dsar/\(jobID)/download?file=subject.zip.age"], out: copy)
        XCTAssertEqual(got.status, 200)
        XCTAssertEqual(got.headers["etag"], "\"\(delivery.sha256)\"")
        XCTAssertEqual(try sha256sum(copy), delivery.sha256)
        XCTAssertEqual(try bytes(copy), try bytes(spool.root + "/outbox/\(jobID)/subject.zip.age"))

        let old = try link(server, jobID)
        XCTAssertEqual(try curlFile([server.baseURL + old]).status, 200)
        // dsar retry withdraws the entry: the link is gone (410), a new one cannot be made (404).
        let retry = try spool.dsar(["retry", jobID])
        XCTAssertEqual(retry.status, 0, retry.stderr)
        XCTAssertEqual(try curlFile([server.baseURL + old]).status, 410)
        let pending = try server.curl("GET", "/dsar/\(jobID)/download")
        XCTAssertEqual(pending.status, 404, pending.body)
        XCTAssertTrue(try (pending.json()["detail"] as? String ?? "").contains("PENDING"), pending.body)
        // The second attempt publishes its own entry: the old link stays gone, a new one works.
        XCTAssertEqual(
            try spool.dsar(["run", "--settle", "0.2"], timeout: 120).status, 1, "exit 1: a job ended partial")
        XCTAssertEqual(try spool.records().first?.attempts, 2)
        XCTAssertEqual(try curlFile([server.baseURL + old]).status, 410)
        let fresh = try link(server, jobID)
        let bundle = spool.base + "/bundle.zip.age"
        XCTAssertEqual(try curlFile([server.baseURL + fresh], out: bundle).status, 200)
        XCTAssertEqual(try bytes(bundle), try bytes(spool.root + "/outbox/\(jobID)/bundle.zip.age"))
        XCTAssertEqual(try server.stop().status, 0)
    }
}
