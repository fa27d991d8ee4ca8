import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A crash must not carry data out: no core dumps, no backtracer memory dumps in the deployment
/// examples, and the sample plugin leaves no temp file behind when the disk is full.
final class CrashHygieneE2ETests: XCTestCase {

    /// The core limit of a running `dsar` (from /proc): 0 soft and hard, whatever it inherited.
    func testDsarProcessCannotDumpCore() throws {
        var inherited = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &inherited)
        guard inherited.rlim_max != 0 else {
            throw XCTSkip("the test process's hard core limit is already 0: dsar's own setting cannot be told apart")
        }
        let s = try TempSpool()
        try s.initialize()
        let child = try s.start(["watch", "--connectors", s.base + "/connectors"])
        defer {
            child.signal(SIGTERM)
            _ = try? child.wait(timeout: 60)
        }
        var line = ""
        let seen = waitUntil(timeout: 20) {
            let limits = (try? String(contentsOfFile: "/proc/\(child.pid)/limits", encoding: .utf8)) ?? ""
            line = limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") }.map(String.init) ?? ""
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // "Max core file size  <soft>  <hard>  bytes"
            return fields.count >= 6 && fields[4] == "0" && fields[5] == "0"
        }
        XCTAssertTrue(
            seen,
            "dsar's core limit: \(line) (inherited hard limit \(inherited.rlim_max)); stderr: \(child.stderrSoFar())")
    }

    /// The systemd units set LimitCORE=0 and turn the Swift backtracer off; the runtime accepts
    /// that setting (it warns on stderr about settings it does not know).
    func testDeploymentExamplesTurnOffCoreDumpsAndBacktracerDumps() throws {
        let s = try TempSpool()
        let dir = s.base + "/deploy"
        let r = try runCommand(dsarBinary, ["deploy-examples", "--out", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        for unit in ["dsar-watch.service", "dsar-nightly.service"] {
            let text = try String(contentsOfFile: dir + "/" + unit, encoding: .utf8)
            let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            XCTAssertTrue(lines.contains("LimitCORE=0"), unit)
            XCTAssertTrue(lines.contains("Environment=SWIFT_BACKTRACE=\(ProcessHardening.backtraceSetting)"), unit)
        }
        let cron = try String(contentsOfFile: dir + "/crontab", encoding: .utf8)
        XCTAssertTrue(
            cron.split(separator: "\n").contains("SWIFT_BACKTRACE=\(ProcessHardening.backtraceSetting)"), cron)
        let v = try runCommand(dsarBinary, ["--version"], env: ["SWIFT_BACKTRACE": ProcessHardening.backtraceSetting])
        XCTAssertEqual(v.status, 0, v.stderr)
        XCTAssertEqual(
            v.stderr, "", "the Swift runtime complained about SWIFT_BACKTRACE=\(ProcessHardening.backtraceSetting)")
    }

    /// connectors/plugins/crm-lookup.py deleting from a CRM file on a full tmpfs: it fails with the
    /// reason, the CRM file is unchanged and no `.crm-*` temp file is left; with space it works.
    func testSamplePluginCleansUpItsTempFileOnENOSPC() throws {
        guard let python = which("python3") else { throw XCTSkip("python3 is not installed") }
        let s = try TempSpool()
        let mnt = s.base + "/tiny"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        let m = try runTool("mount", ["-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt])
        guard m.status == 0 else {
            throw XCTSkip("cannot mount a tmpfs on \(mnt) (needs root / CAP_SYS_ADMIN): \(m.stderr)")
        }
        defer { withExtendedLifetime(s) { _ = try? runTool("umount", [mnt]) } }

        let plugin = mnt + "/plugins/crm-lookup.py"
        try writeFile(
            plugin, try String(contentsOfFile: repoRoot + "/connectors/plugins/crm-lookup.py", encoding: .utf8),
            mode: 0o755)
        var contacts: [String] = []
        for k in 0..<1500 {
            contacts.append(#"{"email": "person\#(k)@example.com", "user_id": \#(5000 + k), "name": "Person \#(k)"}"#)
        }
        let db = "[" + contacts.joined(separator: ",\n") + "]\n"
        try writeFile(mnt + "/crm.json", db)
        // Leave 8 KiB: the rewritten file (about as large as the original) cannot fit.
        var st = statvfs()
        XCTAssertEqual(statvfs(mnt, &st), 0)
        let fillerSize = Int(st.f_bavail) * Int(st.f_frsize) - 8192
        try FileSystem.writeScratch(mnt + "/filler", [UInt8](repeating: 0x5A, count: fillerSize))
        let request =
            #"{"protocol": 1, "action": "delete", "dry_run": false, "job_id": "J1", "identifiers": [{"type": "email", "value": "person7@example.com"}]}"#

        let full = try runCommand(python, [plugin, "crm.json"], stdin: request)
        XCTAssertEqual(full.status, 1, "stdout: \(full.stdout) stderr: \(full.stderr)")
        XCTAssertTrue(full.stderr.contains("No space left on device"), full.stderr)
        XCTAssertFalse(full.stderr.contains("Traceback"), full.stderr)
        XCTAssertEqual(try FileSystem.list(mnt).sorted(), ["crm.json", "filler", "plugins"])
        XCTAssertEqual(try String(contentsOfFile: mnt + "/crm.json", encoding: .utf8), db)

        try FileSystem.remove(mnt + "/filler")
        let ok = try runCommand(python, [plugin, "crm.json"], stdin: request)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains(#""deleted": 1"#), ok.stdout)
        XCTAssertEqual(try FileSystem.list(mnt).sorted(), ["crm.json", "plugins"])
    }
}
