import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Runs a tool found on PATH; stdin from a file (or /dev/null), stdout and stderr captured in files.

private func randomBytes(_ n: Int) -> [UInt8] {
    var g = SystemRandomNumberGenerator()
    return (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
}

private func writeFile(_ path: String, _ bytes: [UInt8], mode: Int = 0o600) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    chmod(path, mode_t(mode))
}

private func readFile(_ path: String) -> [UInt8] {
    [UInt8](FileManager.default.contents(atPath: path) ?? Data())
}

final class AgeTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "dsar-age-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o700)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// `age-keygen -o PATH`; returns the key file path.
    func ageKeygen(_ name: String) throws -> String {
        let path = dir + "/" + name
        let r = try runTool("age-keygen", ["-o", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        chmod(path, 0o600)
        return path
    }

    /// Encrypts with our encryptor, writing the plaintext in uneven pieces.
    func encrypt(_ plaintext: [UInt8], to recipients: [AgeRecipient]) throws -> [UInt8] {
        var out: [UInt8] = []
        let enc = try AgeEncryptor(recipients: recipients) { out.append(contentsOf: $0) }
        var offset = 0
        var step = 1
        while offset < plaintext.count {
            let n = min(step, plaintext.count - offset)
            try plaintext.withUnsafeBytes { try enc.write(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + n])) }
            offset += n
            step = step * 7 % 90_001 + 3
        }
        try enc.finish()
        XCTAssertEqual(enc.plaintextBytes, Int64(plaintext.count))
        return out
    }

    /// Length of the binary payload after the header line "--- …\n".
    func payloadLength(_ file: [UInt8]) -> Int {
        let marker = Array("\n--- ".utf8)
        let at = file.firstRange(of: marker)!
        let eol = file[at.upperBound...].firstIndex(of: 0x0A)!
        return file.count - (eol + 1)
    }

    func decrypt(_ file: [UInt8], _ ids: [AgeIdentity]) throws -> [UInt8] {
        var out: [UInt8] = []
        let n = try AgeDecryptor.decrypt(file, identities: ids) { out.append(contentsOf: $0) }
        XCTAssertEqual(n, Int64(out.count))
        return out
    }

    func testEncryptorOutputOpensWithAgeTool() throws {
        let key = try ageKeygen("key.txt")
        let recipients = try AgeKeys.recipients(fromFile: key)
        XCTAssertEqual(recipients.count, 1)
        for size in [0, 1, 65535, 65536, 65537, 131072, 200000] {
            let plain = randomBytes(size)
            let file = try encrypt(plain, to: recipients)
            // nonce + one tag per chunk; a multiple of 64 KiB ends with a full final chunk, never an empty one
            let chunks = max(1, (size + 65535) / 65536)
            XCTAssertEqual(payloadLength(file), 16 + size + 16 * chunks, "size \(size)")
            let encPath = dir + "/f\(size).age"
            try writeFile(encPath, file)
            let r = try runTool("age", ["-d", "-i", key, encPath])
            XCTAssertEqual(r.status, 0, "age -d failed for size \(size): \(r.stderr)")
            XCTAssertEqual(r.stdout, plain, "size \(size)")
        }
    }

    func testTwoRecipientsEachIdentityDecrypts() throws {
        let k1 = try ageKeygen("k1.txt")
        let k2 = try ageKeygen("k2.txt")
        let recipients = try AgeKeys.recipients(fromFile: k1) + AgeKeys.recipients(fromFile: k2)
        XCTAssertNotEqual(recipients[0], recipients[1])
        let plain = randomBytes(100_000)
        let file = try encrypt(plain, to: recipients)
        XCTAssertEqual(String(decoding: file.prefix(200), as: UTF8.self).components(separatedBy: "-> X25519 ").count, 3)
        let encPath = dir + "/two.age"
        try writeFile(encPath, file)
        for k in [k1, k2] {
            let r = try runTool("age", ["-d", "-i", k, encPath])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(r.stdout, plain)
            XCTAssertEqual(try decrypt(file, AgeKeys.identities(fromFile: k)), plain)
        }
        let other = AgeIdentity.generate()
        XCTAssertThrowsError(try decrypt(file, [other])) { XCTAssertEqual(($0 as? AgeError)?.kind, .noMatch) }
    }

    func testDecryptsFilesMadeByAgeTool() throws {
        let key = try ageKeygen("key.txt")
        let ids = try AgeKeys.identities(fromFile: key)
        let recipient = ids[0].recipient
        let other = AgeIdentity.generate()
        let recipientsFile = dir + "/recipients.txt"
        try writeFile(
            recipientsFile,
            Array("# DSAR recipients\n\n\(other.recipient.string)\n# the operator\n\(recipient.string)\n".utf8),
            mode: 0o644)
        XCTAssertEqual(try AgeKeys.recipients(fromFile: recipientsFile), [other.recipient, recipient])
        XCTAssertEqual(try AgeKeys.recipients(from: recipient.string), [recipient])

        for size in [0, 5, 65536, 150_000] {
            let plain = randomBytes(size)
            let plainPath = dir + "/plain\(size)"
            try writeFile(plainPath, plain)
            for (flag, arg) in [("-r", recipient.string), ("-R", recipientsFile)] {
                let encPath = dir + "/byage\(size)\(flag).age"
                let r = try runTool("age", [flag, arg, "-o", encPath, plainPath])
                XCTAssertEqual(r.status, 0, r.stderr)
                let outPath = dir + "/out\(size)\(flag)"
                let n = try AgeDecryptor.decrypt(file: encPath, identities: ids, to: outPath)
                XCTAssertEqual(n, Int64(size))
                XCTAssertEqual(readFile(outPath), plain, "\(flag) size \(size)")
                XCTAssertEqual(try decrypt(readFile(encPath), ids), plain)
                if flag == "-R" {
                    XCTAssertEqual(try decrypt(readFile(encPath), [other]), plain)
                }
            }
        }
    }

    func testRoundTripAndStreamingReader() throws {
        let id = AgeIdentity.generate()
        let parsedId = try AgeIdentity(parsing: id.string)
        XCTAssertEqual(parsedId.recipient, id.recipient)
        XCTAssertTrue(id.string.hasPrefix("AGE-SECRET-KEY-1"))
        XCTAssertEqual(try AgeRecipient(parsing: id.recipient.string), id.recipient)
        for size in [0, 1, 65535, 65536, 65537, 3 * 65536, 300_001] {
            let plain = randomBytes(size)
            let file = try encrypt(plain, to: [AgeIdentity.generate().recipient, id.recipient])
            XCTAssertEqual(try decrypt(file, [id]), plain)
            // the pull-reader form, fed in odd-sized reads
            var offset = 0
            var got: [UInt8] = []
            let reader: (UnsafeMutableRawBufferPointer) throws -> Int = { dest in
                let k = min(dest.count, 1000, file.count - offset)
                file.withUnsafeBytes {
                    dest.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<offset + k]))
                }
                offset += k
                return k
            }
            let n = try AgeDecryptor.decrypt(reader: reader, identities: [AgeIdentity.generate(), id]) {
                got.append(contentsOf: $0)
            }
            XCTAssertEqual(n, Int64(size))
            XCTAssertEqual(got, plain)
        }
        // file to file
        let plain = randomBytes(70_000)
        try writeFile(dir + "/p", plain)
        try AgeEncryptor.encrypt(file: dir + "/p", recipients: [id.recipient], to: dir + "/p.age")
        try AgeDecryptor.decrypt(file: dir + "/p.age", identities: [id], to: dir + "/p.out")
        XCTAssertEqual(readFile(dir + "/p.out"), plain)
    }

    func testSpecExampleKeysAndBech32() throws {
        // C2SP age.md examples
        let id = try AgeIdentity(parsing: "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
        XCTAssertEqual(id.recipient.string, "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj")
        XCTAssertEqual(id.string, "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
        // BIP 173 valid strings
        for s in ["A12UEL5L", "a12uel5l", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw"] {
            XCTAssertNoThrow(try Bech32.decode(s), s)
        }
        let d = try Bech32.decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw")
        XCTAssertEqual(d.hrp, "abcdef")
        XCTAssertEqual(Bech32.encode(hrp: "abcdef", data: d.data), "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw")
        // BIP 173 invalid strings: bad checksum, mixed case, no separator, bad character, empty HRP
        for s in ["A1G7SGD8", "a12UEL5L", "pzry9x0s0muk", "x1b4n0q5v", "1pzry9x0s0muk", "li1dgmt3", "10a06t8"] {
            XCTAssertThrowsError(try Bech32.decode(s), s)
        }
        // mixed case age recipient
        var r = Array(id.recipient.string)
        r[5] = Character(r[5].uppercased())
        XCTAssertThrowsError(try AgeRecipient(parsing: String(r)))
        // an identity is not a recipient and vice versa
        XCTAssertThrowsError(try AgeRecipient(parsing: id.string))
        XCTAssertThrowsError(try AgeIdentity(parsing: id.recipient.string))
        XCTAssertThrowsError(try AgeIdentity(parsing: "AGE-PLUGIN-YUBIKEY-1QQQQQQ"))
    }

    func testLowOrderRecipientRefused() throws {
        for key in [[UInt8](repeating: 0, count: 32), [1] + [UInt8](repeating: 0, count: 31)] {
            let r = try AgeRecipient(parsing: Bech32.encode(hrp: "age", data: key))
            XCTAssertThrowsError(try AgeEncryptor(recipients: [AgeIdentity.generate().recipient, r]) { _ in }) { e in
                XCTAssertEqual((e as? AgeError)?.kind, .invalidRecipient)
                XCTAssertTrue("\(e)".contains("low-order"), "\(e)")
            }
        }
        XCTAssertThrowsError(try AgeEncryptor(recipients: []) { _ in })
    }

    func testTamperingIsDetectedWithTheRightKind() throws {
        let id = AgeIdentity.generate()
        let plain = randomBytes(2 * 65536 + 100)
        let file = try encrypt(plain, to: [id.recipient])
        let text = String(decoding: file.prefix(300), as: UTF8.self)
        let headerEnd = file.count - payloadLength(file)
        let bodyLineStart = Array(text.utf8).firstIndex(of: 0x0A)!
        let stanzaBody = Array(text.utf8)[(bodyLineStart + 1)...].firstIndex(of: 0x0A)! + 1  // line after "-> X25519 …"
        let macAt = file.firstRange(of: Array("\n--- ".utf8))!.upperBound

        func expect(_ kind: AgeError.Kind, released: Int64 = 0, _ mutate: (inout [UInt8]) -> Void, line: UInt = #line) {
            var f = file
            mutate(&f)
            var got: Int64 = 0
            XCTAssertThrowsError(try AgeDecryptor.decrypt(f, identities: [id]) { got += Int64($0.count) }, line: line) {
                guard let e = $0 as? AgeError else { return XCTFail("not an AgeError: \($0)", line: line) }
                XCTAssertEqual(e.kind, kind, e.message, line: line)
                XCTAssertEqual(e.plaintextBytesReleased, released, line: line)
                XCTAssertEqual(got, released, line: line)
            }
        }
        expect(.headerFailure) { $0[3] ^= 0x01 }  // version line
        expect(.headerFailure) { $0[bodyLineStart] = 0x20 }  // newline ending the version line
        expect(.noMatch) { $0[stanzaBody + 1] = $0[stanzaBody + 1] == 0x41 ? 0x42 : 0x41 }  // wrapped file key
        expect(.hmacFailure) { $0[macAt] = $0[macAt] == 0x41 ? 0x42 : 0x41 }  // header MAC
        expect(.payloadFailure) { $0[headerEnd] ^= 0x80 }  // payload nonce
        expect(.payloadFailure) { $0[headerEnd + 16 + 10] ^= 0x01 }  // first chunk
        expect(.payloadFailure, released: 65536) { $0[headerEnd + 16 + 65552 + 10] ^= 0x01 }  // second chunk
        expect(.payloadFailure, released: 2 * 65536) { $0[$0.count - 1] ^= 0x01 }  // last chunk's tag
        expect(.payloadFailure, released: 2 * 65536) { $0.removeLast(50) }  // truncated
        expect(.payloadFailure, released: 2 * 65536) { $0.removeLast(116) }  // last chunk cut away
        expect(.payloadFailure, released: 2 * 65536) { $0.append(0) }  // a byte appended to the short last chunk
        expect(.headerFailure) { $0.removeLast($0.count - headerEnd - 5) }  // short nonce

        // trailing data after a full-size final chunk: the chunk is released, then the error
        let full = try encrypt(randomBytes(2 * 65536), to: [id.recipient])
        var got: Int64 = 0
        XCTAssertThrowsError(try AgeDecryptor.decrypt(full + [0x00], identities: [id]) { got += Int64($0.count) }) {
            XCTAssertEqual(($0 as? AgeError)?.kind, .payloadFailure)
            XCTAssertTrue("\($0)".contains("trailing data"), "\($0)")
            XCTAssertEqual(($0 as? AgeError)?.plaintextBytesReleased, 2 * 65536)
        }
        XCTAssertEqual(got, 2 * 65536)

        // a failed file decryption leaves nothing behind
        var bad = file
        bad[bad.count - 1] ^= 1
        try writeFile(dir + "/bad.age", bad)
        XCTAssertThrowsError(try AgeDecryptor.decrypt(file: dir + "/bad.age", identities: [id], to: dir + "/bad.out"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/bad.out"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }, [])
    }

    func testIdentityFileReadableByOthersRefused() throws {
        let key = try ageKeygen("key.txt")
        XCTAssertEqual(try AgeKeys.identities(fromFile: key).count, 1)
        chmod(key, 0o644)
        XCTAssertThrowsError(try AgeKeys.identities(fromFile: key)) { e in
            guard let d = e as? DSARError else { return XCTFail("\(e)") }
            XCTAssertEqual(d.code, .permissions)
            XCTAssertTrue(d.message.contains("chmod 600 \(key)"), d.message)
        }
        // recipients can still be derived from it
        XCTAssertEqual(try AgeKeys.recipients(fromFile: key).count, 1)
        chmod(key, 0o600)
        try writeFile(dir + "/junk.txt", Array("# nothing\nAGE-PLUGIN-FOO-1XYZ\n".utf8))
        XCTAssertThrowsError(try AgeKeys.identities(fromFile: dir + "/junk.txt")) { e in
            XCTAssertTrue("\(e)".contains("junk.txt:2"), "\(e)")
        }
    }

    // MARK: Passphrase (scrypt) recipients

    /// Encrypts with our scrypt encryptor, in uneven pieces.
    func encrypt(_ plaintext: [UInt8], passphrase: String, workFactor: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        let enc = try AgeEncryptor(scrypt: try AgeScryptRecipient(passphrase: passphrase, workFactor: workFactor)) {
            out.append(contentsOf: $0)
        }
        var offset = 0
        while offset < plaintext.count {
            let n = min(40_000, plaintext.count - offset)
            try plaintext.withUnsafeBytes { try enc.write(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + n])) }
            offset += n
        }
        try enc.finish()
        return out
    }

    func testScryptRoundTripAndWrongPassphrase() throws {
        let plain = randomBytes(200_000)
        let file = try encrypt(plain, passphrase: "tr4in-h0rse", workFactor: 10)
        let text = String(decoding: file.prefix(200), as: UTF8.self)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines[0], "age-encryption.org/v1")
        // `-> scrypt <base64 of 16 bytes = 22 chars> 10`, then a 43-char body line, then the MAC.
        let args = lines[1].split(separator: " ")
        XCTAssertEqual(args.count, 4, String(lines[1]))
        XCTAssertEqual(args[1], "scrypt")
        XCTAssertEqual(args[2].count, 22)
        XCTAssertEqual(args[3], "10")
        XCTAssertEqual(lines[2].count, 43)
        XCTAssertTrue(lines[3].hasPrefix("--- "))
        var out: [UInt8] = []
        try AgeDecryptor.decrypt(file, identities: [], scrypt: AgeScryptIdentity(passphrase: "tr4in-h0rse")) {
            out += $0
        }
        XCTAssertEqual(out, plain)
        XCTAssertThrowsError(
            try AgeDecryptor.decrypt(file, identities: [], scrypt: AgeScryptIdentity(passphrase: "tr4in-h0rsE")) { _ in
            }
        ) { e in
            XCTAssertEqual((e as? AgeError)?.kind, .noMatch, "\(e)")
            XCTAssertTrue("\(e)".contains("passphrase"), "\(e)")
        }
        // An X25519 identity does not open a passphrase file.
        XCTAssertThrowsError(try AgeDecryptor.decrypt(file, identities: [AgeIdentity.generate()]) { _ in }) { e in
            XCTAssertEqual((e as? AgeError)?.kind, .noMatch, "\(e)")
        }
        // Work factors outside 1…22 and empty passphrases are refused before anything is written.
        for bad in [0, 23, -1] {
            XCTAssertThrowsError(try AgeScryptRecipient(passphrase: "x", workFactor: bad)) { e in
                XCTAssertEqual((e as? AgeError)?.kind, .invalidRecipient, "\(e)")
            }
        }
        XCTAssertThrowsError(try AgeScryptRecipient(passphrase: ""))
        XCTAssertEqual(try AgeScryptRecipient(passphrase: "x").workFactor, 18)
    }

    /// The real `age -d` opens our passphrase file (default work factor 18), the passphrase typed
    /// on a pseudo-terminal, and the plaintext is ours byte for byte.
    func testScryptFileOpensWithAgeTool() throws {
        guard which("age") != nil, which("python3") != nil else { throw XCTSkip("age or python3 not on PATH") }
        let plain = randomBytes(150_000)
        let passphrase = "k7mq-zp3w-9xhd-c4rt"
        var out: [UInt8] = []
        let enc = try AgeEncryptor(scrypt: try AgeScryptRecipient(passphrase: passphrase)) { out += $0 }
        try enc.write(plain)
        try enc.finish()
        XCTAssertTrue(String(decoding: out.prefix(80), as: UTF8.self).contains(" 18\n"))
        try writeFile(dir + "/ours.age", out)
        let r = try runWithPassphrase(
            "age", ["-d", "-o", dir + "/ours.out", dir + "/ours.age"], passphrase: passphrase)
        XCTAssertEqual(r.status, 0, r.terminal)
        XCTAssertEqual(readFile(dir + "/ours.out"), plain)
        let wrong = try runWithPassphrase(
            "age", ["-d", "-o", dir + "/wrong.out", dir + "/ours.age"], passphrase: passphrase + "x")
        XCTAssertNotEqual(wrong.status, 0, wrong.terminal)
        XCTAssertTrue(wrong.terminal.contains("incorrect passphrase"), wrong.terminal)
    }

    /// Our decryptor opens a file the real `age -p` made, and refuses it with another passphrase.
    func testAgeToolPassphraseFileOpensWithOurDecryptor() throws {
        guard which("age") != nil, which("python3") != nil else { throw XCTSkip("age or python3 not on PATH") }
        let plain = randomBytes(70_000)
        try writeFile(dir + "/plain", plain)
        let passphrase = "Ünïcode passphrase with spaces"
        let r = try runWithPassphrase("age", ["-p", "-o", dir + "/theirs.age", dir + "/plain"], passphrase: passphrase)
        XCTAssertEqual(r.status, 0, r.terminal)
        let file = readFile(dir + "/theirs.age")
        XCTAssertTrue(String(decoding: file.prefix(60), as: UTF8.self).contains("-> scrypt "))
        var out: [UInt8] = []
        try AgeDecryptor.decrypt(file, identities: [], scrypt: AgeScryptIdentity(passphrase: passphrase)) { out += $0 }
        XCTAssertEqual(out, plain)
        XCTAssertThrowsError(
            try AgeDecryptor.decrypt(file, identities: [], scrypt: AgeScryptIdentity(passphrase: "other")) { _ in }
        ) { e in XCTAssertEqual((e as? AgeError)?.kind, .noMatch, "\(e)") }
    }

    // MARK: CCTV age test vectors

    func testCCTVVectors() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let folder = root.deletingLastPathComponent().appendingPathComponent("shared/cctv-age").standardizedFileURL.path
        guard FileManager.default.fileExists(atPath: folder) else {
            throw XCTSkip("CCTV age vectors not found at \(folder) (expected <repo>/../shared/cctv-age); skipping")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0 != "README.md" }.sorted()
        var passed = 0
        var failed: [String] = []
        var skipped: [String: Int] = [:]
        var applicable = 0
        var applicablePassphrase = 0
        var passedPassphrase = 0
        let known: Set<String> = [
            "expect", "payload", "file key", "identity", "passphrase", "armored", "comment", "compressed",
        ]
        for name in names {
            let raw = readFile(folder + "/" + name)
            guard let split = raw.firstRange(of: Array("\n\n".utf8)) else {
                failed.append("\(name): no blank line after the header")
                continue
            }
            var fields: [(String, String)] = []
            for line in raw[..<split.lowerBound].split(separator: 0x0A) {
                let s = String(decoding: line, as: UTF8.self)
                guard let colon = s.range(of: ": ") else { continue }
                fields.append((String(s[..<colon.lowerBound]), String(s[colon.upperBound...])))
            }
            func values(_ k: String) -> [String] { fields.filter { $0.0 == k }.map { $0.1 } }
            let unknown = fields.map(\.0).filter { !known.contains($0) }
            if !unknown.isEmpty {
                skipped["unknown key \(unknown[0])", default: 0] += 1
                continue
            }
            if values("armored").first == "yes" {
                skipped["armored", default: 0] += 1
                continue
            }
            let passphrases = values("passphrase")
            let idStrings = values("identity")
            if idStrings.contains(where: { !$0.hasPrefix("AGE-SECRET-KEY-1") }) {
                skipped["non-X25519 identity", default: 0] += 1
                continue
            }
            applicable += 1
            if !passphrases.isEmpty { applicablePassphrase += 1 }
            var body = Array(raw[split.upperBound...])
            if values("compressed").first == "zlib" { body = try Zlib.inflate(body) }
            let ids = try idStrings.map { try AgeIdentity(parsing: $0) }
            let expect = values("expect").first ?? "?"
            var hasher = StreamingSHA256()
            var released: Int64 = 0
            var outcome = "success"
            var reportedReleased: Int64 = -1
            do {
                let scrypt = passphrases.first.map { AgeScryptIdentity(passphrase: $0) }
                reportedReleased = try AgeDecryptor.decrypt(body, identities: ids, scrypt: scrypt) { chunk in
                    hasher.update(chunk)
                    released += Int64(chunk.count)
                }
            } catch let e as AgeError {
                reportedReleased = e.plaintextBytesReleased
                switch e.kind {
                case .noMatch: outcome = "no match"
                case .hmacFailure: outcome = "HMAC failure"
                case .headerFailure: outcome = "header failure"
                case .payloadFailure: outcome = "payload failure"
                case .invalidRecipient: outcome = "invalid recipient"
                }
            }
            var problems: [String] = []
            if outcome != expect { problems.append("expected \(expect), got \(outcome)") }
            if reportedReleased != released {
                problems.append("reported \(reportedReleased) bytes released, sink got \(released)")
            }
            if let want = values("payload").first, hasher.hexDigest() != want {
                problems.append("payload hash \(hasher.hexDigest()) != \(want) (\(released) bytes released)")
            }
            if expect != "success" && values("payload").isEmpty && released != 0 {
                problems.append("released \(released) bytes but the vector expects none")
            }
            if problems.isEmpty {
                passed += 1
                if !passphrases.isEmpty { passedPassphrase += 1 }
            } else {
                failed.append("\(name): " + problems.joined(separator: "; "))
            }
        }
        let skippedTotal = skipped.values.reduce(0, +)
        let reasons = skipped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        print(
            "cctv: \(passed) passed (\(passedPassphrase) of them scrypt/passphrase), \(skippedTotal) skipped (\(reasons))"
        )
        XCTAssertEqual(failed, [], failed.joined(separator: "\n"))
        // 66 X25519 per the folder's README, plus `empty` (a zero-byte age file with no identity
        // lines), plus the 25 non-armored passphrase (scrypt) vectors.
        XCTAssertEqual(applicablePassphrase, 25)
        XCTAssertEqual(passedPassphrase, 25)
        XCTAssertEqual(applicable, 67 + 25)
        XCTAssertEqual(passed, applicable)
    }
}
