import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The shared tool runner, with stdout as text.
private func runText(
    _ tool: String, _ args: [String], stdinPath: String? = nil
) throws -> (status: Int32, stdout: String, stderr: String) {
    let r = try DSARTestSupport.runTool(tool, args, stdinPath: stdinPath)
    return (r.status, String(decoding: r.stdout, as: UTF8.self), r.stderr)
}

/// Runs a tool found on PATH; stdin from a file (or /dev/null), stdout and stderr captured in files.

private func write(_ path: String, _ text: String, mode: Int = 0o600) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    chmod(path, mode_t(mode))
}

private func write(_ path: String, bytes: [UInt8], mode: Int = 0o600) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    chmod(path, mode_t(mode))
}

private func read(_ path: String) -> String {
    String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
}

final class SSHSigTests: XCTestCase {
    var dir = ""
    let namespace = "dsar-bundle@example.com"
    let principal = "dsar-signer@example.com"

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "dsar-sshsig-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o700)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// `ssh-keygen -t ed25519 -N '' -f PATH`; returns the private key path.
    func sshKeygen(_ name: String, comment: String = "made-by-ssh-keygen") throws -> String {
        let path = dir + "/" + name
        let r = try runText("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return path
    }

    /// Our generated key, written as a private key file (0600).
    func ourKey(_ name: String) throws -> (SSHEd25519Key, String) {
        let key = SSHEd25519Key.generate(comment: "dsar@spool")
        let path = dir + "/" + name
        try write(path, key.privateKeyFile)
        return (key, path)
    }

    /// `ssh-keygen -Y verify`; true when it accepts.
    func sshVerify(allowed: String, principal: String, namespace: String, sig: String, message: String) throws -> Bool {
        let r = try runText(
            "ssh-keygen", ["-Y", "verify", "-f", allowed, "-I", principal, "-n", namespace, "-s", sig],
            stdinPath: message)
        return r.status == 0
    }

    /// `ssh-keygen -Y sign`; the armored signature.
    func sshSign(key: String, namespace: String, message: String, hashalg: String? = nil) throws -> String {
        try? FileManager.default.removeItem(atPath: message + ".sig")
        var args = ["-Y", "sign", "-f", key, "-n", namespace]
        if let hashalg { args += ["-O", "hashalg=\(hashalg)"] }
        let r = try runText("ssh-keygen", args + [message])
        XCTAssertEqual(r.status, 0, r.stderr)
        return read(message + ".sig")
    }

    func testSSHKeygenAcceptsOurSignatures() throws {
        let (generated, _) = try ourKey("ours")
        let fromTool = try SSHEd25519Key.load(path: try sshKeygen("theirs"))
        var message = Array("manifest of bundle 0191…\n".utf8) + (0..<5000).map { UInt8($0 % 251) }
        let msgPath = dir + "/msg"
        try write(msgPath, bytes: message)
        for (i, key) in [generated, fromTool].enumerated() {
            let allowed = dir + "/allowed\(i)"
            try write(
                allowed, "# signers\n" + key.allowedSignersLine(principals: [principal], namespaces: [namespace]) + "\n"
            )
            for hash in ["sha512", "sha256"] {
                let sig = try SSHSig.sign(message, key: key, namespace: namespace, hash: hash)
                let sigPath = dir + "/sig\(i)\(hash)"
                try write(sigPath, sig)
                XCTAssertTrue(
                    try sshVerify(
                        allowed: allowed, principal: principal, namespace: namespace, sig: sigPath, message: msgPath))
                // our own verifier agrees
                XCTAssertEqual(
                    try SSHSig.verify(armored: sig, message: message, namespace: namespace), key.publicKeyBlob)
                // wrong namespace, wrong principal
                XCTAssertFalse(
                    try sshVerify(
                        allowed: allowed, principal: principal, namespace: "other", sig: sigPath, message: msgPath))
                XCTAssertFalse(
                    try sshVerify(
                        allowed: allowed, principal: "mallory@example.com", namespace: namespace, sig: sigPath,
                        message: msgPath))
                // one byte changed in the message
                message[7] ^= 0x01
                let badPath = dir + "/bad"
                try write(badPath, bytes: message)
                XCTAssertFalse(
                    try sshVerify(
                        allowed: allowed, principal: principal, namespace: namespace, sig: sigPath, message: badPath))
                XCTAssertThrowsError(try SSHSig.verify(armored: sig, message: message, namespace: namespace))
                message[7] ^= 0x01
            }
        }
    }

    func testOurVerifierAcceptsSSHKeygenSignatures() throws {
        let keyPath = try sshKeygen("k")
        let key = try SSHEd25519Key.load(path: keyPath)
        let message = Array("hello, world\n".utf8)
        let msgPath = dir + "/m"
        try write(msgPath, bytes: message)
        for hashalg in [nil, "sha256", "sha512"] {
            let sig = try sshSign(key: keyPath, namespace: namespace, message: msgPath, hashalg: hashalg)
            XCTAssertEqual(try SSHSig.verify(armored: sig, message: message, namespace: namespace), key.publicKeyBlob)
            XCTAssertEqual(try SSHSig.signerPublicKey(armored: sig), key.publicKeyBlob)
            XCTAssertThrowsError(try SSHSig.verify(armored: sig, message: message, namespace: "file")) { e in
                XCTAssertTrue("\(e)".contains("namespace"), "\(e)")
            }
            XCTAssertThrowsError(try SSHSig.verify(armored: sig, message: message + [0x0A], namespace: namespace)) {
                e in
                XCTAssertEqual((e as? DSARError)?.code, .verification)
                XCTAssertTrue("\(e)".contains("does not verify"), "\(e)")
            }
        }
    }

    func testSignatureIsByteIdenticalToSSHKeygen() throws {
        let theirs = try sshKeygen("theirs")
        let (_, ours) = try ourKey("ours")
        let message = (0..<100_000).map { UInt8(($0 * 31) & 0xFF) }
        let msgPath = dir + "/data"
        try write(msgPath, bytes: message)
        for keyPath in [theirs, ours] {
            let key = try SSHEd25519Key.load(path: keyPath)
            for hashalg in ["sha512", "sha256"] {
                let expected = try sshSign(
                    key: keyPath, namespace: namespace, message: msgPath, hashalg: hashalg == "sha512" ? nil : hashalg)
                let got = try SSHSig.sign(message, key: key, namespace: namespace, hash: hashalg)
                XCTAssertEqual(got, expected, "\(keyPath) \(hashalg)")
                XCTAssertTrue(got.split(separator: "\n").allSatisfy { $0.count <= 70 })
            }
        }
    }

    func testPrivateKeyFileUsableBySSHKeygen() throws {
        let (key, path) = try ourKey("ours")
        let r = try runText("ssh-keygen", ["-y", "-f", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), key.publicKeyLine)
        XCTAssertTrue(key.publicKeyLine.hasPrefix("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"))
        // fingerprint matches ssh-keygen -l
        let l = try runText("ssh-keygen", ["-l", "-f", path])
        XCTAssertTrue(l.stdout.contains(key.fingerprint), l.stdout)
        // re-parsing gives the same key and the same file
        let again = try SSHEd25519Key.load(path: path)
        XCTAssertEqual(again.publicKeyBlob, key.publicKeyBlob)
        XCTAssertEqual(again.privateKeyFile, key.privateKeyFile)
        // a file written by ssh-keygen is reproduced byte for byte
        let theirs = try sshKeygen("theirs", comment: "someone@host")
        let loaded = try SSHEd25519Key.load(path: theirs)
        XCTAssertEqual(loaded.privateKeyFile, read(theirs))
        XCTAssertEqual(loaded.publicKeyLine + "\n", read(theirs + ".pub"))
        // and ssh-keygen can sign with ours (checked for identity in testSignatureIsByteIdenticalToSSHKeygen)
        let msg = dir + "/m"
        try write(msg, "x")
        XCTAssertFalse(try sshSign(key: path, namespace: namespace, message: msg).isEmpty)
    }

    func testKeyLoadingRefusals() throws {
        let (_, path) = try ourKey("ours")
        chmod(path, 0o640)
        XCTAssertThrowsError(try SSHEd25519Key.load(path: path)) { e in
            guard let d = e as? DSARError else { return XCTFail("\(e)") }
            XCTAssertEqual(d.code, .permissions)
            XCTAssertTrue(d.message.contains(path) && d.message.contains("chmod 600 \(path)"), d.message)
        }
        let enc = dir + "/enc"
        let r = try runText("ssh-keygen", ["-q", "-t", "ed25519", "-N", "a passphrase", "-f", enc])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertThrowsError(try SSHEd25519Key.load(path: enc)) { e in
            XCTAssertTrue("\(e)".contains("encrypted with a passphrase"), "\(e)")
        }
        let ecdsa = dir + "/ecdsa"
        XCTAssertEqual(try runText("ssh-keygen", ["-q", "-t", "ecdsa", "-N", "", "-f", ecdsa]).status, 0)
        XCTAssertThrowsError(try SSHEd25519Key.load(path: ecdsa)) { e in
            XCTAssertTrue("\(e)".contains("only ssh-ed25519"), "\(e)")
        }
        XCTAssertThrowsError(try SSHEd25519Key(openSSHPrivateKey: "hello", path: "x"))
    }

    func testVerifierRejectsMalformedAndUnsupported() throws {
        let (key, _) = try ourKey("ours")
        let message = Array("m".utf8)
        let sig = try SSHSig.sign(message, key: key, namespace: namespace)
        XCTAssertTrue(sig.hasPrefix("-----BEGIN SSH SIGNATURE-----\n"))
        XCTAssertTrue(sig.hasSuffix("\n-----END SSH SIGNATURE-----\n"))
        XCTAssertThrowsError(try SSHSig.verify(armored: "garbage", message: message, namespace: namespace)) { e in
            XCTAssertTrue("\(e)".contains("armor"), "\(e)")
        }
        XCTAssertThrowsError(
            try SSHSig.verify(
                armored: sig.replacingOccurrences(of: "-----END SSH SIGNATURE-----", with: ""), message: message,
                namespace: namespace))
        XCTAssertThrowsError(try SSHSig.verify(armored: sig + "trailing", message: message, namespace: namespace))
        // a signature byte changed (inside the base64 body, last line before the footer)
        var lines = sig.split(separator: "\n").map(String.init)
        var last = Array(lines[lines.count - 2])
        last[2] = last[2] == "A" ? "B" : "A"
        lines[lines.count - 2] = String(last)
        XCTAssertThrowsError(
            try SSHSig.verify(armored: lines.joined(separator: "\n") + "\n", message: message, namespace: namespace))
        XCTAssertThrowsError(try SSHSig.sign(message, key: key, namespace: ""))
        XCTAssertThrowsError(try SSHSig.sign(message, key: key, namespace: "n", hash: "md5"))
        // an ECDSA signature from ssh-keygen: unsupported key type
        let ecdsa = dir + "/ecdsa"
        XCTAssertEqual(try runText("ssh-keygen", ["-q", "-t", "ecdsa", "-N", "", "-f", ecdsa]).status, 0)
        try write(dir + "/m", bytes: message)
        let ecSig = try sshSign(key: ecdsa, namespace: namespace, message: dir + "/m")
        XCTAssertThrowsError(try SSHSig.verify(armored: ecSig, message: message, namespace: namespace)) { e in
            XCTAssertTrue("\(e)".contains("unsupported key type ecdsa-sha2-nistp256"), "\(e)")
        }
    }

    func testAllowedSigners() throws {
        let a = SSHEd25519Key.generate(comment: "a")
        let b = SSHEd25519Key.generate(comment: "b")
        let c = SSHEd25519Key.generate(comment: "c")
        let blob = { (k: SSHEd25519Key) in k.publicKeyLine.split(separator: " ")[1] }
        let text = """
            # dsar signers
            alice@example.com,ops-*@example.com namespaces="dsar-bundle,file" ssh-ed25519 \(blob(a)) alice's laptop

              bob@example.com valid-before="20200101",namespaces="dsar-*" ssh-ed25519 \(blob(b))
            "carol@example.com" valid-after="20991231Z" ssh-ed25519 \(blob(c))
            ca@ca.example.org cert-authority ssh-ed25519 \(blob(c))
            !mallory@example.com,*@example.com ssh-ed25519 \(blob(c))

            """
        let allowed = try AllowedSigners(parsing: text, path: "allowed_signers")
        XCTAssertEqual(allowed.entries.count, 5)
        let now = Date()
        XCTAssertNil(
            allowed.check(principal: "alice@example.com", keyBlob: a.publicKeyBlob, namespace: "dsar-bundle", at: now))
        XCTAssertNil(
            allowed.check(principal: "ops-7@example.com", keyBlob: a.publicKeyBlob, namespace: "file", at: now))
        let ns = allowed.check(principal: "alice@example.com", keyBlob: a.publicKeyBlob, namespace: "git", at: now)
        XCTAssertTrue(ns?.contains("namespace \"git\"") ?? false, ns ?? "nil")
        let wrongKey = allowed.check(
            principal: "alice@example.com", keyBlob: b.publicKeyBlob, namespace: "file", at: now)
        XCTAssertTrue(wrongKey?.contains("not listed for principal") ?? false, wrongKey ?? "nil")
        // expired
        let expired = allowed.check(
            principal: "bob@example.com", keyBlob: b.publicKeyBlob, namespace: "dsar-bundle", at: now)
        XCTAssertTrue(expired?.contains("expired") ?? false, expired ?? "nil")
        XCTAssertNil(
            allowed.check(
                principal: "bob@example.com", keyBlob: b.publicKeyBlob, namespace: "dsar-bundle",
                at: Date(timeIntervalSince1970: 1_500_000_000)))
        // not yet valid; but c is also allowed for *@example.com on the last line
        let early = allowed.check(principal: "carol@example.com", keyBlob: c.publicKeyBlob, namespace: "x", at: now)
        XCTAssertNil(early)
        XCTAssertTrue(
            allowed.check(principal: "carol@other.org", keyBlob: c.publicKeyBlob, namespace: "x", at: now)?.contains(
                "no entry") ?? false)
        // negated principal
        XCTAssertNotNil(
            allowed.check(principal: "mallory@example.com", keyBlob: c.publicKeyBlob, namespace: "x", at: now))
        // cert-authority is never a plain-key match
        let ca = allowed.check(principal: "ca@ca.example.org", keyBlob: c.publicKeyBlob, namespace: "x", at: now)
        XCTAssertTrue(ca?.contains("cert-authority") ?? false, ca ?? "nil")
        XCTAssertEqual(
            allowed.principals(for: a.publicKeyBlob, namespace: "file", at: now),
            ["alice@example.com", "ops-*@example.com"])
        XCTAssertEqual(allowed.principals(for: b.publicKeyBlob, namespace: "dsar-bundle", at: now), [])
        XCTAssertEqual(allowed.principals(for: a.publicKeyBlob, namespace: "git", at: now), [])

        // malformed lines are refused with file:line
        for bad in [
            "alice@example.com",
            "alice@example.com namespaces=dsar ssh-ed25519 \(blob(a))",
            "alice@example.com valid-before=\"2020\" ssh-ed25519 \(blob(a))",
            "alice@example.com frobnicate ssh-ed25519 \(blob(a))",
            "alice@example.com ssh-ed25519 AAAA!!!",
            "alice@example.com ssh-rsa \(blob(a))",
            "alice@example.com valid-after=\"20300101\",valid-before=\"20200101\" ssh-ed25519 \(blob(a))",
        ] {
            XCTAssertThrowsError(try AllowedSigners(parsing: "# x\n" + bad + "\n", path: "f"), bad) { e in
                XCTAssertTrue("\(e)".hasPrefix("f:2: "), "\(e)")
            }
        }

        // ssh-keygen agrees about expiry and namespaces
        let msgPath = dir + "/m"
        try write(msgPath, "payload")
        let allowedPath = dir + "/allowed"
        try write(allowedPath, text)
        for (key, who, space, expectOK) in [
            (a, "alice@example.com", "dsar-bundle", true), (a, "alice@example.com", "git", false),
            (b, "bob@example.com", "dsar-bundle", false), (c, "carol@example.com", "x", true),
        ] {
            let sigPath = dir + "/s"
            try write(sigPath, try SSHSig.sign(Array("payload".utf8), key: key, namespace: space))
            XCTAssertEqual(
                try sshVerify(allowed: allowedPath, principal: who, namespace: space, sig: sigPath, message: msgPath),
                expectOK, "\(who) \(space)")
            XCTAssertEqual(
                allowed.check(principal: who, keyBlob: key.publicKeyBlob, namespace: space, at: now) == nil, expectOK,
                "\(who) \(space)")
        }
    }
}
