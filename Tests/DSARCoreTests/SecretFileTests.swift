import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// One rule for every secret file: regular, not a symlink, 0600 (no group/other bits), owned by
/// the user dsar runs as or root.
final class SecretFileTests: XCTestCase {
    func makeSecret(_ s: TempSpool, _ name: String = "secret", mode: mode_t = 0o600) throws -> String {
        let path = s.base + "/" + name
        try FileSystem.writeScratch(path, Array("s3cret\n".utf8), mode: mode)
        return path
    }

    func testPrivateFileIsRead() throws {
        let s = try TempSpool()
        let path = try makeSecret(s)
        XCTAssertEqual(try SecretFile.read(path, what: "the password file"), Array("s3cret\n".utf8))
        XCTAssertEqual(try SecretFile.check(path, what: "the password file").kind, .regular)
        chmod(path, 0o400)
        XCTAssertEqual(
            try SecretFile.read(path, what: "the password file"), Array("s3cret\n".utf8), "0400 is private too")
    }

    func testGroupOrWorldReadableIsRefusedWithTheChmodFix() throws {
        let s = try TempSpool()
        for mode: mode_t in [0o644, 0o640, 0o604, 0o610] {
            let path = try makeSecret(s, "k\(String(mode, radix: 8))", mode: mode)
            XCTAssertThrowsError(try SecretFile.read(path, what: "the password file")) { e in
                let d = e as! DSARError
                XCTAssertEqual(d.code, .permissions)
                XCTAssertEqual(d.path, path)
                XCTAssertEqual(
                    d.message,
                    "the password file \(path) is accessible by group or others (mode \(String(mode, radix: 8))); run: chmod 600 \(path)"
                )
            }
        }
    }

    func testSymlinkIsRefusedEvenToAPrivateFile() throws {
        let s = try TempSpool()
        let target = try makeSecret(s)
        let link = s.base + "/link"
        XCTAssertEqual(symlink(target, link), 0)
        XCTAssertThrowsError(try SecretFile.read(link, what: "the password file")) { e in
            let d = e as! DSARError
            XCTAssertEqual(d.code, .permissions)
            XCTAssertTrue(d.message.contains("\(link) is a symbolic link"), d.message)
        }
        // The same rule through every caller: the signing key, the age identity file.
        XCTAssertThrowsError(try SSHEd25519Key.load(path: link)) { e in
            XCTAssertTrue((e as! DSARError).message.contains("signing key \(link) is a symbolic link"), "\(e)")
        }
        XCTAssertThrowsError(try AgeKeys.identities(fromFile: link)) { e in
            XCTAssertEqual((e as! DSARError).code, .permissions)
        }
    }

    func testMissingDirectoryAndForeignOwnerAreRefused() throws {
        let s = try TempSpool()
        XCTAssertThrowsError(try SecretFile.read(s.base + "/nope", what: "the password file")) { e in
            XCTAssertEqual((e as! DSARError).code, .notFound)
            XCTAssertEqual((e as! DSARError).message, "the password file \(s.base)/nope does not exist")
        }
        try FileSystem.makeDirectory(s.base + "/d", mode: 0o700)
        XCTAssertThrowsError(try SecretFile.read(s.base + "/d", what: "the password file")) { e in
            XCTAssertTrue((e as! DSARError).message.contains("must be a regular file, not a directory"), "\(e)")
        }
        let fifo = s.base + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertThrowsError(try SecretFile.read(fifo, what: "the password file")) { e in
            XCTAssertTrue((e as! DSARError).message.contains("not a fifo"), "\(e)")
        }
        let foreign = try makeSecret(s, "foreign")
        guard geteuid() == 0 else { return }  // only root can give a file away
        XCTAssertEqual(chown(foreign, 4242, 4242), 0)
        XCTAssertThrowsError(try SecretFile.read(foreign, what: "the password file")) { e in
            let d = e as! DSARError
            XCTAssertEqual(d.code, .permissions)
            XCTAssertTrue(
                d.message.contains("belongs to uid 4242") && d.message.contains("chown \(geteuid()) \(foreign)"),
                d.message)
        }
    }

    func testSSHKeygenKeyWithLooseModeIsRefusedThenAccepted() throws {
        guard let keygen = which("ssh-keygen") else { throw XCTSkip("ssh-keygen is not installed") }
        let s = try TempSpool()
        let key = s.base + "/id_ed25519"
        XCTAssertEqual(try runCommand(keygen, ["-q", "-t", "ed25519", "-N", "", "-C", "t", "-f", key]).status, 0)
        chmod(key, 0o644)
        XCTAssertThrowsError(try SSHEd25519Key.load(path: key)) { e in
            let d = e as! DSARError
            XCTAssertEqual(d.code, .permissions)
            XCTAssertTrue(d.message.contains("chmod 600 \(key)"), d.message)
        }
        chmod(key, 0o600)
        let loaded = try SSHEd25519Key.load(path: key)
        // ssh-keygen is the oracle for the public half.
        let pub = try String(contentsOfFile: key + ".pub", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        XCTAssertEqual(loaded.publicKeyLine, pub)
    }
}
