import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The SFTP contract against a real OpenSSH server: a private `sshd` on 127.0.0.1 (temp host key,
/// temp config, temp authorized key; the system's SSH setup is neither used nor changed), the real
/// `sftp` client uploading signed requests (`X.json.sig` first) into the inbox — one in place, one
/// as `.part` + rename — `dsar run` processing them, and the published outbox entries fetched back
/// over SFTP and checked with `age`, `unzip` and `ssh-keygen -Y verify` as the privacy team would.
final class SFTPE2ETests: XCTestCase {
    /// The running test server (stopped in tearDown).
    var server: SSHServer?

    override func tearDown() {
        server?.stop()
        server = nil
        super.tearDown()
    }

    /// One CSV source that knows both subjects.
    func makeConnectors(_ s: TempSpool) throws -> String {
        let dir = s.base + "/connectors"
        try writeFile(
            dir + "/data/accounts.csv",
            "email,user_id,name\nalice@example.com,1042,Alice\nbob@example.org,7,Bob\nmalice@example.com,10420,Mal\n")
        try writeFile(
            dir + "/accounts.yaml",
            """
            name: accounts
            type: csv
            paths: [ data/accounts.csv ]
            category: account
            columns: { email: email, user_id: user_id }

            """)
        return dir
    }

    func testRequestsUploadedOverSFTPAreProcessedAndBundlesDownloadedAndVerified() throws {
        for tool in ["sftp", "ssh-keygen", "age", "unzip"] where which(tool) == nil {
            throw XCTSkip("\(tool) is not installed (apt-get install openssh-client age unzip)")
        }
        let s = try TempSpool()
        let connectors = try makeConnectors(s)
        // The privacy team's side: request files on its own disk, signed with its request-signing
        // key, which the spool's request_signers file allows (require_signed_requests: true).
        let local = s.base + "/team"
        try writeFile(local + "/req1.json", #"{"request_id": "SFTP-1", "action": "export", "user_id": "1042"}"# + "\n")
        try writeFile(
            local + "/req2.json", #"{"request_id": "SFTP-2", "action": "export", "email": "Bob@Example.org"}"# + "\n")
        let key = local + "/request_key"
        let k = try runCommand(
            which("ssh-keygen")!, ["-q", "-t", "ed25519", "-N", "", "-C", "privacy team", "-f", key])
        XCTAssertEqual(k.status, 0, k.stderr)
        let pub = try String(contentsOfFile: key + ".pub", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        try writeFile(s.base + "/request_signers", "privacy-team namespaces=\"dsar-request\" \(pub)\n")
        let extraConfig = "require_signed_requests: true\nrequest_signers: \(s.base)/request_signers\n"
        for name in ["req1.json", "req2.json"] {
            let r = try runCommand(
                which("ssh-keygen")!, ["-q", "-Y", "sign", "-f", key, "-n", "dsar-request", local + "/" + name])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        try s.initialize(extraConfig: extraConfig)
        let srv = try SSHServer.start(in: s.base + "/sshd")
        server = srv

        // Session 1: req1 straight into place; req2 as an upload in progress (.part). A signature
        // goes up before its request.
        try srv.sftp(
            cwd: s.root,
            """
            put \(local)/req1.json.sig inbox/req1.json.sig
            put \(local)/req2.json.sig inbox/req2.json.sig
            put \(local)/req1.json inbox/req1.json
            put \(local)/req2.json inbox/req2.json.part
            ls -1 inbox

            """)
        XCTAssertEqual(Set(s.list("inbox")), ["req1.json", "req1.json.sig", "req2.json.part", "req2.json.sig"])

        // A run takes the settled req1 and never touches the .part file.
        var r = try s.dsar(["run", "--settle", "1", "--connectors", connectors])
        XCTAssertEqual(r.status, 0, "dsar run: \(r.stdout)\n\(r.stderr.suffix(3000))")
        XCTAssertEqual(
            Set(s.list("inbox")), ["req2.json.part", "req2.json.sig"], "the .part upload must stay untouched")
        XCTAssertEqual(s.list("rejected"), [], s.list("rejected").map { s.reason($0) }.joined(separator: "\n"))
        XCTAssertEqual(
            s.text("inbox/req2.json.part"), try String(contentsOfFile: local + "/req2.json", encoding: .utf8))

        // Session 2: the upload is complete; rename it into place.
        try srv.sftp(cwd: s.root, "rename inbox/req2.json.part inbox/req2.json\n")
        r = try s.dsar(["run", "--settle", "1", "--connectors", connectors])
        XCTAssertEqual(r.status, 0, "dsar run: \(r.stdout)\n\(r.stderr.suffix(3000))")
        try assertSpoolAccountsFor(s, expected: ["SFTP-1", "SFTP-2"], context: "after both runs")

        let jobs = try s.records()
        XCTAssertEqual(jobs.count, 2)
        XCTAssertTrue(
            jobs.allSatisfy { $0.status == .completed },
            "\(jobs.map { "\($0.requestID ?? "?"): \($0.status.rawValue)" })")
        XCTAssertEqual(Set(s.list("outbox")), Set(jobs.map(\.jobID)))
        XCTAssertEqual(jobs.map(\.signer), ["privacy-team", "privacy-team"])
        XCTAssertEqual(s.list("active"), [], "signatures leave with their requests")

        // Session 3: the privacy team fetches every outbox entry.
        let download = s.base + "/download"
        try FileManager.default.createDirectory(atPath: download, withIntermediateDirectories: true)
        try srv.sftp(
            cwd: s.root,
            jobs.map { "get -r outbox/\($0.jobID) \(download)/\($0.jobID)" }.joined(separator: "\n") + "\n")

        for job in jobs {
            let entry = download + "/" + job.jobID
            let files = try FileManager.default.contentsOfDirectory(atPath: entry).sorted()
            XCTAssertEqual(files, ["bundle.zip.age", "manifest.json", "manifest.json.sig"], job.requestID ?? "")
            for f in files {
                XCTAssertEqual(
                    FileManager.default.contents(atPath: entry + "/" + f),
                    FileManager.default.contents(atPath: s.root + "/outbox/\(job.jobID)/" + f),
                    "\(f) of \(job.jobID) differs after the SFTP download")
            }

            // The manifest's signature, with OpenSSH and the spool's allowed_signers.
            let v = try runTool(
                "ssh-keygen",
                [
                    "-Y", "verify", "-f", s.root + "/keys/allowed_signers", "-I", "dsar", "-n", "dsar-manifest", "-s",
                    entry + "/manifest.json.sig",
                ],
                stdinPath: entry + "/manifest.json")
            XCTAssertEqual(
                v.status, 0, "ssh-keygen -Y verify: \(String(decoding: v.stdout, as: UTF8.self)) \(v.stderr)")
            XCTAssertTrue(
                String(decoding: v.stdout, as: UTF8.self).contains("Good \"dsar-manifest\" signature for dsar"))

            // The bundle opens with age and the team's identity, is a valid ZIP and matches the manifest.
            let zip = entry + "/bundle.zip"
            let d = try runCommand(
                which("age")!, ["-d", "-i", s.teamKeys + "/age.key", "-o", zip, entry + "/bundle.zip.age"])
            XCTAssertEqual(d.status, 0, "age -d: \(d.stderr)")
            let t = try runCommand(which("unzip")!, ["-t", zip])
            XCTAssertEqual(t.status, 0, "unzip -t: \(t.stdout) \(t.stderr)")
            XCTAssertTrue(t.stdout.contains("No errors detected"), t.stdout)

            let manifest = try XCTUnwrap(
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: entry + "/manifest.json")))
                    as? [String: Any])
            let bundle = try XCTUnwrap(manifest["bundle"] as? [String: Any])
            let sha = try runTool("sha256sum", [entry + "/bundle.zip.age"])
            XCTAssertEqual(
                String(decoding: sha.stdout, as: UTF8.self).split(separator: " ").first.map(String.init),
                bundle["sha256"] as? String)

            // The subject's own row is in the bundle, and nobody else's.
            let rows = try runCommand(which("unzip")!, ["-p", zip, "data/accounts/accounts.csv"])
            XCTAssertEqual(rows.status, 0, rows.stderr)
            switch job.requestID {
            case "SFTP-1":
                XCTAssertTrue(rows.stdout.contains("alice@example.com,1042,Alice"), rows.stdout)
                XCTAssertFalse(rows.stdout.contains("10420"), rows.stdout)
                XCTAssertFalse(rows.stdout.contains("bob@"), rows.stdout)
            case "SFTP-2":
                XCTAssertTrue(rows.stdout.contains("bob@example.org,7,Bob"), rows.stdout)
                XCTAssertFalse(rows.stdout.contains("alice@"), rows.stdout)
            default:
                XCTFail("unexpected request id \(job.requestID ?? "nil")")
            }
        }

        // The journal (received → published, signed checkpoints) verifies too.
        let audit = try s.dsar(["audit", "verify"] + jobs.map { "--manifest=\(download)/\($0.jobID)/manifest.json" })
        XCTAssertEqual(audit.status, 0, audit.stdout + audit.stderr)
        XCTAssertTrue(audit.stdout.hasPrefix("OK:"), audit.stdout)
    }
}

/// A private OpenSSH server for one test: Debian's `/usr/sbin/sshd` in the foreground on a free
/// port of 127.0.0.1, with a temporary host key, config and authorized key, and a client key to
/// log in with. Only `/run/sshd` (the privilege separation directory sshd insists on) is created
/// when missing (and left in place, as the openssh-server package would).
///
/// sshd is started with `posix_spawn`, not `Foundation.Process`: sshd closes every inherited file
/// descriptor at startup, including the socket Foundation watches to notice a child's exit, and
/// Foundation then blocks its one monitoring thread in `waitpid` on sshd — so no other child
/// (`sftp`, `dsar`) would ever be seen to finish while sshd runs.
final class SSHServer: @unchecked Sendable {
    static let sshd = "/usr/sbin/sshd"

    let dir: String
    let port: Int
    let user: String
    let clientKey: String
    let pid: pid_t
    /// sshd's stderr (`-e`).
    let log: String
    private var reaped = false

    private init(dir: String, port: Int, user: String, clientKey: String, pid: pid_t, log: String) {
        self.dir = dir
        self.port = port
        self.user = user
        self.clientKey = clientKey
        self.pid = pid
        self.log = log
    }

    /// Starts sshd with everything under `dir`; skips the test when sshd is not installed.
    static func start(in dir: String) throws -> SSHServer {
        guard FileManager.default.isExecutableFile(atPath: sshd) else {
            throw XCTSkip(
                "\(sshd) is missing: apt-get install openssh-server (the test runs its own sshd; the system's is not used)"
            )
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (key, what) in [("host_ed25519_key", "host key"), ("client_ed25519_key", "client key")] {
            let r = try runCommand(
                which("ssh-keygen")!,
                ["-q", "-t", "ed25519", "-N", "", "-C", "dsar-test \(what)", "-f", dir + "/" + key])
            guard r.status == 0 else { throw TestFailure("ssh-keygen (\(what)) failed: \(r.stderr)") }
        }
        try FileManager.default.copyItem(atPath: dir + "/client_ed25519_key.pub", toPath: dir + "/authorized_keys")
        chmod(dir + "/authorized_keys", 0o600)

        // sshd refuses to start without its privilege separation directory.
        if getuid() == 0 && !FileManager.default.fileExists(atPath: "/run/sshd") {
            mkdir("/run/sshd", 0o755)
        }
        guard let pw = getpwuid(getuid()) else { throw TestFailure("no passwd entry for uid \(getuid())") }
        let user = String(cString: pw.pointee.pw_name)

        var lastError = ""
        for attempt in 1...3 {
            let port = try freeLocalPort()
            let config = dir + "/sshd_config"
            let log = dir + "/sshd-\(attempt).log"
            try """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(dir)/host_ed25519_key
            PidFile \(dir)/sshd.pid
            AuthorizedKeysFile \(dir)/authorized_keys
            PubkeyAuthentication yes
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PermitRootLogin prohibit-password
            StrictModes no
            UsePAM no
            AllowTcpForwarding no
            X11Forwarding no
            PrintMotd no
            Subsystem sftp internal-sftp

            """.write(toFile: config, atomically: true, encoding: .utf8)
            // Under timeout(1), so a crashed test never leaves an sshd behind for more than two minutes
            // (timeout passes our SIGTERM on to sshd).
            let pid = try spawn("/usr/bin/timeout", ["120", sshd, "-D", "-e", "-f", config], output: log)
            let server = SSHServer(
                dir: dir, port: port, user: user, clientKey: dir + "/client_ed25519_key", pid: pid, log: log)
            let listening = waitUntil(timeout: 10) {
                !server.isRunning || server.logText.contains("Server listening on 127.0.0.1 port \(port)")
            }
            if listening && server.isRunning { return server }
            server.stop()
            lastError = server.logText
            // Another process may have taken the port between our probe and sshd's bind: try another.
            guard lastError.contains("Address already in use") else { break }
        }
        throw TestFailure("sshd did not start: \(lastError)")
    }

    /// What sshd has logged so far.
    var logText: String { String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self) }

    /// Whether sshd is still running (reaps it once it has exited).
    var isRunning: Bool {
        if reaped { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == 0 { return true }
        reaped = true
        return false
    }

    /// Runs `sftp -b` with `commands` as the batch file, starting in `cwd` on the server (absolute
    /// paths work: the test server has no chroot). Fails on the first command that fails.
    @discardableResult
    func sftp(cwd: String, _ commands: String) throws -> CommandResult {
        let batch = dir + "/batch-\(UUID().uuidString)"
        try ("cd \(cwd)\n" + commands).write(toFile: batch, atomically: true, encoding: .utf8)
        defer { unlink(batch) }
        let r = try runCommand(
            which("sftp")!,
            [
                "-b", batch, "-i", clientKey, "-P", "\(port)", "-F", "/dev/null",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
                "\(user)@127.0.0.1",
            ], timeout: 30)
        if r.status != 0 {
            throw TestFailure("sftp failed (\(r.status)): \(r.stdout)\n\(r.stderr)\nsshd: \(logText.suffix(2000))")
        }
        return r
    }

    /// Stops sshd (SIGTERM through timeout(1), then SIGKILL) and reaps it.
    func stop() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        if !waitUntil(timeout: 5, { !isRunning }) {
            kill(-pid, SIGKILL)  // timeout(1) leads its own process group: sshd and its sessions
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            reaped = true
        }
    }

    /// Starts `path` with `args`, stdin from /dev/null, stdout and stderr appended to `output`.
    static func spawn(_ path: String, _ args: [String], output: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard rc == 0 else { throw TestFailure("cannot start \(path): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// A TCP port on 127.0.0.1 that is free right now (bind to port 0, read it back, close).
    static func freeLocalPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw TestFailure("bind: \(String(cString: strerror(errno)))") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard named == 0 else { throw TestFailure("getsockname: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
