@preconcurrency import Crypto
import Foundation

/// SSH signatures (OpenSSH PROTOCOL.sshsig) with Ed25519 keys, interoperable with `ssh-keygen -Y`.
package enum SSHSig {
    static let magic = Array("SSHSIG".utf8)
    static let version: UInt32 = 1
    static let begin = "-----BEGIN SSH SIGNATURE-----"
    static let end = "-----END SSH SIGNATURE-----"

    /// Signs `message` for `namespace`; the armored result is what `ssh-keygen -Y sign -n NAMESPACE`
    /// writes (byte for byte: Ed25519 signatures are deterministic).
    package static func sign(
        _ message: [UInt8], key: SSHEd25519Key, namespace: String, hash: String = "sha512"
    ) throws
        -> String
    {
        guard !namespace.isEmpty else { throw DSARError(.usage, "an SSH signature namespace must not be empty") }
        let digest = try hashMessage(message, hash)
        let signed = signedData(namespace: namespace, hash: hash, digest: digest)
        var sigBlob = SSHWireWriter()
        sigBlob.string(SSHEd25519Key.keyType)
        sigBlob.string(try key.sign(signed))
        var w = SSHWireWriter()
        w.raw(magic)
        w.uint32(version)
        w.string(key.publicKeyBlob)
        w.string(namespace)
        w.string([UInt8]())
        w.string(hash)
        w.string(sigBlob.bytes)
        return "\(begin)\n\(wrap70(CryptoBase64.encode(w.bytes, padded: true)))\(end)\n"
    }

    /// Verifies an armored signature over `message` for `namespace` (ssh-ed25519 keys, sha256 or
    /// sha512); returns the signer's public key blob. Throws ``DSARError`` `.verification` with the
    /// reason otherwise. Checking the key against an allowed_signers file is ``AllowedSigners``' job.
    @discardableResult
    package static func verify(armored: String, message: [UInt8], namespace: String) throws -> [UInt8] {
        func fail(_ why: String) -> DSARError { DSARError(.verification, "SSH signature: \(why)") }
        let blob = try dearmor(armored)
        var r = SSHWireReader(blob)
        do {
            guard try r.raw(magic.count) == magic else { throw fail("bad magic (not an SSHSIG blob)") }
            let v = try r.uint32()
            guard v == version else { throw fail("unsupported signature version \(v)") }
            let publicKeyBlob = try r.string()
            let sigNamespace = try r.text()
            _ = try r.string()  // reserved: ignored
            let hash = try r.text()
            let sigBlob = try r.string()
            guard r.isAtEnd else { throw fail("trailing data in the signature blob") }

            var pk = SSHWireReader(publicKeyBlob)
            let keyType = try pk.text()
            guard keyType == SSHEd25519Key.keyType else {
                throw fail("unsupported key type \(keyType) (only ssh-ed25519 is supported)")
            }
            let publicKey = try pk.string()
            guard pk.isAtEnd, publicKey.count == 32 else { throw fail("malformed ssh-ed25519 public key") }

            guard sigNamespace == namespace else {
                throw fail("namespace mismatch: the signature is for \"\(sigNamespace)\", expected \"\(namespace)\"")
            }
            guard hash == "sha256" || hash == "sha512" else { throw fail("unsupported hash algorithm \"\(hash)\"") }

            var s = SSHWireReader(sigBlob)
            let sigType = try s.text()
            guard sigType == SSHEd25519Key.keyType else {
                throw fail("signature algorithm \(sigType) does not match key type \(keyType)")
            }
            let raw = try s.string()
            guard s.isAtEnd, raw.count == 64 else { throw fail("malformed ssh-ed25519 signature") }

            let digest = try hashMessage(message, hash)
            let signed = signedData(namespace: namespace, hash: hash, digest: digest)
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey),
                key.isValidSignature(raw, for: signed)
            else {
                throw fail(
                    "signature does not verify (the message or signature was changed, or a different key signed it)")
            }
            return publicKeyBlob
        } catch is SSHWireReader.Truncated {
            throw fail("truncated or malformed signature blob")
        }
    }

    /// The public key blob inside an armored signature (without verifying anything).
    package static func signerPublicKey(armored: String) throws -> [UInt8] {
        var r = SSHWireReader(try dearmor(armored))
        do {
            guard try r.raw(magic.count) == magic, try r.uint32() == version else {
                throw DSARError(.verification, "SSH signature: not an SSHSIG version 1 blob")
            }
            return try r.string()
        } catch is SSHWireReader.Truncated {
            throw DSARError(.verification, "SSH signature: truncated or malformed signature blob")
        }
    }

    /// `SHA256:<unpadded base64>` of a public key blob, as `ssh-keygen -l` shows.
    package static func fingerprint(of keyBlob: [UInt8]) -> String {
        "SHA256:" + CryptoBase64.encode(Array(SHA256.hash(data: keyBlob)), padded: false)
    }

    /// `ssh-ed25519 AAAA…` for a public key blob.
    package static func publicKeyText(of keyBlob: [UInt8]) -> String {
        var r = SSHWireReader(keyBlob)
        let type = (try? r.text()) ?? "unknown"
        return "\(type) \(CryptoBase64.encode(keyBlob, padded: true))"
    }

    static func dearmor(_ armored: String) throws -> [UInt8] {
        func fail(_ why: String) -> DSARError { DSARError(.verification, "SSH signature: malformed armor: \(why)") }
        let text = Array(armored.utf8)
        let b = Array(begin.utf8)
        let e = Array(end.utf8)
        guard text.starts(with: b) else { throw fail("it does not start with \"\(begin)\"") }
        var i = b.count
        if i < text.count && text[i] == 0x0D { i += 1 }
        guard i < text.count, text[i] == 0x0A else { throw fail("no line break after the header") }
        let rest = Array(text[(i + 1)...])
        guard let endAt = rest.firstRange(of: e) else { throw fail("no \"\(end)\" line") }
        guard endAt.lowerBound == 0 || rest[endAt.lowerBound - 1] == 0x0A else {
            throw fail("the end line does not start a line")
        }
        let after = rest[endAt.upperBound...]
        guard after.allSatisfy({ $0 == 0x0A || $0 == 0x0D || $0 == 0x20 || $0 == 0x09 }) else {
            throw fail("data after the end line")
        }
        guard let blob = CryptoBase64.decodePadded(rest[..<endAt.lowerBound]), !blob.isEmpty else {
            throw fail("the base64 body is malformed")
        }
        return blob
    }

    static func hashMessage(_ message: [UInt8], _ hash: String) throws -> [UInt8] {
        switch hash {
        case "sha512": return Array(SHA512.hash(data: message))
        case "sha256": return Array(SHA256.hash(data: message))
        default: throw DSARError(.usage, "unsupported SSH signature hash \"\(hash)\" (use sha256 or sha512)")
        }
    }

    static func signedData(namespace: String, hash: String, digest: [UInt8]) -> [UInt8] {
        var w = SSHWireWriter()
        w.raw(magic)
        w.string(namespace)
        w.string([UInt8]())
        w.string(hash)
        w.string(digest)
        return w.bytes
    }

    /// Base64 text broken into 70-column lines, each ending with LF (OpenSSH's armor layout).
    static func wrap70(_ s: String) -> String {
        let b = Array(s.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            let end = min(i + 70, b.count)
            out.append(contentsOf: b[i..<end])
            out.append(0x0A)
            i = end
        }
        return String(decoding: out, as: UTF8.self)
    }
}
