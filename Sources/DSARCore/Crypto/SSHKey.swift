@preconcurrency import Crypto
import Foundation

/// An Ed25519 key in OpenSSH's formats (PROTOCOL.key for the private key file, RFC 8709 for the
/// public key blob).
package struct SSHEd25519Key: Sendable {
    static let keyType = "ssh-ed25519"
    // Split so that secret scanners do not flag the source.
    static let privateBegin = "-----BEGIN OPENSSH " + "PRIVATE KEY-----"
    static let privateEnd = "-----END OPENSSH PRIVATE KEY-----"
    static let authMagic = Array("openssh-key-v1\0".utf8)

    /// The 32-byte private seed.
    let seed: [UInt8]
    /// The 32-byte public key.
    package let publicKey: [UInt8]
    /// The key's comment.
    package var comment: String
    /// The private section's check value (kept so a loaded key writes back the same file).
    let checkInt: UInt32
    /// The signing key, expanded once from the seed (not again for every signature).
    let signingKey: Curve25519.Signing.PrivateKey

    init(seed: [UInt8], comment: String, checkInt: UInt32) {
        precondition(seed.count == 32)
        self.seed = seed
        let priv = try! Curve25519.Signing.PrivateKey(rawRepresentation: seed)
        self.signingKey = priv
        self.publicKey = Array(priv.publicKey.rawRepresentation)
        self.comment = comment
        self.checkInt = checkInt
    }

    /// A fresh random key.
    package static func generate(comment: String) -> SSHEd25519Key {
        let priv = Curve25519.Signing.PrivateKey()
        return SSHEd25519Key(
            seed: Array(priv.rawRepresentation), comment: comment, checkInt: UInt32.random(in: 0...UInt32.max))
    }

    /// Parses an unencrypted OpenSSH private key file holding one Ed25519 key (as written by
    /// `ssh-keygen -t ed25519 -N ''`). `path` is only used in error messages.
    package init(openSSHPrivateKey text: String, path: String) throws {
        func bad(_ why: String) -> DSARError {
            DSARError(.config, "\(path) is not a usable OpenSSH Ed25519 private key: \(why)", path: path)
        }
        guard let b = text.range(of: Self.privateBegin), let e = text.range(of: Self.privateEnd),
            b.upperBound <= e.lowerBound
        else {
            if text.contains("-----BEGIN") && text.contains("PRIVATE KEY-----") {
                throw bad("it is in PEM/PKCS#8 format; use an OpenSSH-format key (ssh-keygen -t ed25519)")
            }
            throw bad("no \"\(Self.privateBegin)\" block")
        }
        guard let blob = CryptoBase64.decodePadded(Array(text[b.upperBound..<e.lowerBound].utf8)) else {
            throw bad("the base64 body is malformed")
        }
        do {
            var r = SSHWireReader(blob)
            guard try r.raw(Self.authMagic.count) == Self.authMagic else { throw bad("bad magic (not openssh-key-v1)") }
            let cipher = try r.text()
            let kdf = try r.text()
            _ = try r.string()  // kdf options
            if cipher != "none" || kdf != "none" {
                throw DSARError(
                    .config,
                    "\(path) is encrypted with a passphrase (cipher \(cipher), kdf \(kdf)); dsar needs an unencrypted signing key: make a dedicated one with ssh-keygen -t ed25519 -N '' -f \(path)",
                    path: path)
            }
            guard try r.uint32() == 1 else { throw bad("it holds more than one key") }
            let pubBlob = try r.string()
            let priv = try r.string()
            guard r.isAtEnd else { throw bad("trailing data after the private section") }
            guard priv.count % 8 == 0 else { throw bad("the private section is not padded to the block size") }
            var p = SSHWireReader(priv)
            let c1 = try p.uint32()
            let c2 = try p.uint32()
            guard c1 == c2 else { throw bad("check values differ (corrupt or encrypted)") }
            let type = try p.text()
            guard type == Self.keyType else { throw bad("it is a \(type) key; only ssh-ed25519 is supported") }
            let pk = try p.string()
            let sk = try p.string()
            let comment = try p.text()
            guard pk.count == 32, sk.count == 64, Array(sk[32...]) == pk else {
                throw bad("malformed Ed25519 key material")
            }
            var pad: UInt8 = 1
            while !p.isAtEnd {
                guard try p.raw(1)[0] == pad else { throw bad("bad padding") }
                pad &+= 1
            }
            self.init(seed: Array(sk[..<32]), comment: comment, checkInt: c1)
            guard self.publicKey == pk else { throw bad("the public key does not match the private key") }
            guard self.publicKeyBlob == pubBlob else {
                throw bad("the public key block does not match the private key")
            }
        } catch is SSHWireReader.Truncated {
            throw bad("truncated or malformed key data")
        }
    }

    /// Loads a private key file, refusing one that group or others can access.
    package static func load(path: String) throws -> SSHEd25519Key {
        let bytes = try SecretFile.read(path, what: "signing key", limit: 1 << 20)
        return try SSHEd25519Key(openSSHPrivateKey: String(decoding: bytes, as: UTF8.self), path: path)
    }

    /// The public key blob: string "ssh-ed25519", string key.
    package var publicKeyBlob: [UInt8] {
        var w = SSHWireWriter()
        w.string(Self.keyType)
        w.string(publicKey)
        return w.bytes
    }

    /// `ssh-ed25519 AAAA… comment` (no newline), as in a `.pub` file.
    package var publicKeyLine: String {
        let base = "\(Self.keyType) \(CryptoBase64.encode(publicKeyBlob, padded: true))"
        return comment.isEmpty ? base : base + " " + comment
    }

    /// `SHA256:…` as `ssh-keygen -l` prints it.
    package var fingerprint: String { SSHSig.fingerprint(of: publicKeyBlob) }

    /// An allowed_signers line for this key.
    package func allowedSignersLine(principals: [String], namespaces: [String]? = nil) -> String {
        var line = principals.joined(separator: ",")
        if let namespaces { line += " namespaces=\"\(namespaces.joined(separator: ","))\"" }
        return line + " \(Self.keyType) \(CryptoBase64.encode(publicKeyBlob, padded: true))"
    }

    /// The unencrypted OpenSSH private key file, laid out as ssh-keygen writes it.
    package var privateKeyFile: String {
        var priv = SSHWireWriter()
        priv.uint32(checkInt)
        priv.uint32(checkInt)
        priv.string(Self.keyType)
        priv.string(publicKey)
        priv.string(seed + publicKey)
        priv.string(comment)
        var pad: UInt8 = 1
        while priv.bytes.count % 8 != 0 {
            priv.raw([pad])
            pad += 1
        }
        var w = SSHWireWriter()
        w.raw(Self.authMagic)
        w.string("none")
        w.string("none")
        w.string([UInt8]())
        w.uint32(1)
        w.string(publicKeyBlob)
        w.string(priv.bytes)
        return "\(Self.privateBegin)\n\(SSHSig.wrap70(CryptoBase64.encode(w.bytes, padded: true)))\(Self.privateEnd)\n"
    }

    /// A raw Ed25519 signature (64 bytes).
    func sign(_ data: [UInt8]) throws -> [UInt8] {
        Array(try signingKey.signature(for: data))
    }
}
