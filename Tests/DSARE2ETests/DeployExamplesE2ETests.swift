import DSARCore
import DSARTestSupport
import Foundation
import XCTest

final class DeployExamplesE2ETests: XCTestCase {
    func testDeployExamplesAreWrittenAndWellFormed() throws {
        let s = try TempSpool()
        let dir = s.base + "/deploy"
        let r = try runCommand(dsarBinary, ["deploy-examples", "--out", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(
            try FileSystem.list(dir),
            [
                "crontab", "dsar-nightly.service", "dsar-nightly.timer", "dsar-serve.service", "dsar-watch.service",
                "setup.sh",
                "sshd_config.d-dsar.conf", "witness-syslog.sh",
            ])
        XCTAssertEqual(try FileSystem.status(dir + "/setup.sh")!.mode & 0o777, 0o755)
        XCTAssertEqual(try runCommand("/bin/bash", ["-n", dir + "/setup.sh"]).status, 0, "setup.sh parses")
        XCTAssertEqual(
            try runCommand("/bin/sh", ["-n", dir + "/witness-syslog.sh"]).status, 0, "witness-syslog.sh parses")
        let timer = try String(contentsOfFile: dir + "/dsar-nightly.timer", encoding: .utf8)
        XCTAssertTrue(timer.contains("OnCalendar=*-*-* 02:00:00"), timer)
        let serve = try String(contentsOfFile: dir + "/dsar-serve.service", encoding: .utf8)
        XCTAssertTrue(
            serve.contains("ExecStart=/usr/local/bin/dsar serve --spool /srv/dsar/spool --listen 127.0.0.1:8080"),
            serve)
        XCTAssertTrue(serve.contains("KillSignal=SIGTERM") && serve.contains("ReadWritePaths=/srv/dsar/spool\n"), serve)
        XCTAssertFalse(serve.contains("{{"), "unexpanded include: \(serve)")
        if let analyze = which("systemd-analyze") {
            // systemd's own check; only the absent /usr/local/bin/dsar may be reported.
            let v = try runCommand(analyze, ["verify", dir + "/dsar-serve.service"])
            let complaints = (v.stdout + v.stderr).split(separator: "\n").filter { !$0.contains("is not executable") }
            XCTAssertEqual(complaints, [], v.stdout + v.stderr)
        }
        // The unit's command line is one the binary accepts.
        let help = try runCommand(dsarBinary, ["serve", "--help"])
        XCTAssertEqual(help.status, 0, help.stderr)
        XCTAssertTrue(help.stdout.contains("--listen") && help.stdout.contains("--allow-remote"), help.stdout)
        let sshd = try String(contentsOfFile: dir + "/sshd_config.d-dsar.conf", encoding: .utf8)
        XCTAssertTrue(sshd.contains("Match Group dsar-sftp") && sshd.contains("ChrootDirectory"), sshd)
        if let sshdBin = which("sshd")
            ?? (FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") ? "/usr/sbin/sshd" : nil)
        {
            // The Match block is valid sshd syntax (checked in test mode against a throwaway config).
            let key = s.base + "/hostkey"
            _ = try runCommand("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key])
            let conf = s.base + "/sshd_config"
            try "HostKey \(key)\nSubsystem sftp internal-sftp\n\(sshd)".write(
                toFile: conf, atomically: true, encoding: .utf8)
            let t = try runCommand(sshdBin, ["-t", "-f", conf])
            XCTAssertEqual(t.status, 0, t.stderr)
        }
        // Existing files are kept.
        XCTAssertTrue(try runCommand(dsarBinary, ["deploy-examples", "--out", dir]).stdout.contains("kept"))
    }
}
