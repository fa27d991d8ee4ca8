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
                "crontab", "dsar-nightly.service", "dsar-nightly.timer", "dsar-watch.service", "setup.sh",
                "sshd_config.d-dsar.conf", "witness-syslog.sh",
            ])
        XCTAssertEqual(try FileSystem.status(dir + "/setup.sh")!.mode & 0o777, 0o755)
        XCTAssertEqual(try runCommand("/bin/bash", ["-n", dir + "/setup.sh"]).status, 0, "setup.sh parses")
        XCTAssertEqual(
            try runCommand("/bin/sh", ["-n", dir + "/witness-syslog.sh"]).status, 0, "witness-syslog.sh parses")
        let timer = try String(contentsOfFile: dir + "/dsar-nightly.timer", encoding: .utf8)
        XCTAssertTrue(timer.contains("OnCalendar=*-*-* 02:00:00"), timer)
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
