@preconcurrency import Crypto
import Foundation

/// Keyed pseudonyms (HMAC-SHA256 with a secret spool key) that stand for a subject everywhere
/// outside the running job: job records, journal, manifests, logs.
///
/// The same identifier always yields the same pseudonym under one key; without the key nobody can
/// test a guessed e-mail address against it.
package struct Pseudonymizer: Sendable {
    private let key: SymmetricKey

    /// The key file inside the spool.
    package static func keyPath(_ layout: SpoolLayout) -> String { layout.keys + "/pseudonym.key" }

    package init(keyBytes: [UInt8]) { key = SymmetricKey(data: keyBytes) }

    /// Loads the spool's key, creating it (32 random bytes, hex, mode 0600) on first use.
    package static func load(_ layout: SpoolLayout) throws -> Pseudonymizer {
        let path = keyPath(layout)
        if !FileSystem.exists(path) {
            var rng = SystemRandomNumberGenerator()
            let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let hex = bytes.map { String(format: "%02x", $0) }.joined() + "\n"
            try FileSystem.makeDirectory(layout.keys, mode: 0o700)
            try FileSystem.writeAtomically(path, Array(hex.utf8), mode: 0o600)
        }
        let text = String(decoding: try SecretFile.read(path, what: "the pseudonym key", limit: 4096), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Hex.decode(text), bytes.count >= 32 else {
            throw DSARError(.config, "\(path) must hold at least 32 bytes as hex", path: path)
        }
        return Pseudonymizer(keyBytes: bytes)
    }

    /// The pseudonym of one identifier: hex HMAC-SHA256 over `type:value`.
    package func pseudonym(_ id: Identifier) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(id.type):\(id.value)".utf8), using: key)
        return Hex.encode(Array(mac))
    }

    /// The pseudonym of an inbox drop's file name (its raw bytes), which may itself be personal data
    /// (`alice@example.com.json`): what the journal and the log say instead of the name.
    /// `drop-` and 24 hex digits of HMAC-SHA256 over `file:` and the name.
    package func dropName<S: Sequence>(_ name: S) -> String where S.Element == UInt8 {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("file:".utf8) + Array(name), using: key)
        return "drop-" + Hex.encode(Array(mac).prefix(12))
    }

    /// HMAC-SHA256 over `domain:` and `bytes` under the spool key: tags that only a holder of the key
    /// can make (the server's job-id tag on inbox files, idempotency keys). Each use has its own domain.
    package func keyedTag(domain: String, _ bytes: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array("\(domain):".utf8) + bytes, using: key))
    }

    /// The pseudonym of an API client's name (a JWT `sub`, which may be a person's e-mail): what the
    /// journal records instead of it. `principal-` and 24 hex digits of HMAC-SHA256 over
    /// `principal:` and the name; `dsar audit principal NAME` prints it.
    package func principalPseudonym(_ name: String) -> String {
        "principal-" + Hex.encode(keyedTag(domain: "principal", Array(name.utf8)).prefix(12))
    }

    /// The pseudonym of a drop's file name.
    package func dropName(_ name: String) -> String { dropName(Array(name.utf8)) }

    /// A key for another purpose, derived from the spool key with HKDF-SHA256 (`purpose` is the
    /// `info`), so that nothing made with it can be taken for a pseudonym or a keyed tag, nor the
    /// other way round. Each purpose has its own text (e.g. the download tokens of `dsar serve`).
    package func derivedKey(purpose: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: key, salt: Array("dsar-spool-key".utf8), info: Array(purpose.utf8), outputByteCount: 32)
    }

    /// The subject's pseudonym: that of its primary identifier (email, then user_id, phone, ip, then
    /// custom types by name), so the same person gets the same pseudonym across jobs.
    package func subjectPseudonym(_ ids: [Identifier]) -> String {
        guard let primary = Pseudonymizer.primary(ids) else { return "" }
        return pseudonym(primary)
    }

    /// The identifier that names the subject.
    package static func primary(_ ids: [Identifier]) -> Identifier? {
        let order = ["email", "user_id", "phone", "ip"]
        return ids.min { a, b in
            let ra = order.firstIndex(of: a.type) ?? order.count
            let rb = order.firstIndex(of: b.type) ?? order.count
            return (ra, a.type, a.value) < (rb, b.type, b.value)
        }
    }
}

/// Lower-case hex encoding.
package enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Bytes as lower-case hex.
    package static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Hex (either case) to bytes; nil if malformed.
    package static func decode(_ s: String) -> [UInt8]? {
        let b = Array(s.utf8)
        guard b.count % 2 == 0 else { return nil }
        func v(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(b.count / 2)
        var k = 0
        while k < b.count {
            guard let h = v(b[k]), let l = v(b[k + 1]) else { return nil }
            out.append(h << 4 | l)
            k += 2
        }
        return out
    }
}
