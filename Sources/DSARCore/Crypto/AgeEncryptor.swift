@preconcurrency import Crypto
import Foundation
import _CryptoExtras

#if canImport(Glibc)
import Glibc
#endif

/// Constants and key derivations of the age v1 format (C2SP age.md).
enum AgeFormat {
    static let versionLine = Array("age-encryption.org/v1\n".utf8)
    static let x25519Label = Array("age-encryption.org/v1/X25519".utf8)
    static let scryptLabel = Array("age-encryption.org/v1/scrypt".utf8)
    static let scryptSaltSize = 16
    static let chunkSize = 64 * 1024
    static let tagSize = 16
    static let encryptedChunkSize = chunkSize + tagSize
    static let fileKeySize = 16
    static let payloadNonceSize = 16
    /// Bytes of stanza body per full 64-column base64 line.
    static let bytesPerBodyLine = 48

    static func hkdf(ikm: [UInt8], salt: [UInt8], info: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: ikm), salt: salt, info: Array(info.utf8), outputByteCount: 32)
    }

    static func hkdf(ikm: [UInt8], salt: [UInt8], info: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: ikm), salt: salt, info: info, outputByteCount: 32)
    }

    static func bytes(_ key: SymmetricKey) -> [UInt8] { key.withUnsafeBytes { Array($0) } }

    /// The scrypt stanza's wrap key: scrypt(passphrase, label || salt, N = 2^logN, r = 8, p = 1), 32 bytes.
    static func scryptKey(passphrase: [UInt8], salt: [UInt8], logN: Int) throws -> SymmetricKey {
        do {
            return try KDF.Scrypt.deriveKey(
                from: passphrase, salt: scryptLabel + salt, outputByteCount: 32, rounds: 1 << logN, blockSize: 8,
                parallelism: 1)
        } catch {
            throw AgeError(.headerFailure, "age scrypt key derivation failed (work factor \(logN)): \(error)")
        }
    }

    /// X25519; nil when the shared secret is all zero (low-order point), which age forbids.
    static func x25519(_ priv: Curve25519.KeyAgreement.PrivateKey, _ pub: [UInt8]) -> [UInt8]? {
        guard let pk = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: pub),
            let ss = try? priv.sharedSecretFromKeyAgreement(with: pk)
        else { return nil }
        let b = ss.withUnsafeBytes { Array($0) }
        return b.allSatisfy { $0 == 0 } ? nil : b
    }

    /// The 12-byte STREAM nonce: 11-byte big-endian counter, then the last-chunk flag.
    static func streamNonce(_ counter: UInt64, last: Bool) -> ChaChaPoly.Nonce {
        var n = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { n[3 + i] = UInt8(truncatingIfNeeded: counter >> UInt64(8 * (7 - i))) }
        n[11] = last ? 1 : 0
        return try! ChaChaPoly.Nonce(data: n)
    }

    static let zeroNonce = try! ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12))

    static func seal(_ plaintext: UnsafeRawBufferPointer, key: SymmetricKey, nonce: ChaChaPoly.Nonce) -> [UInt8] {
        let box = try! ChaChaPoly.seal(plaintext, using: key, nonce: nonce)
        var out = box.ciphertext.withUnsafeBytes { Array($0) }
        box.tag.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }

    static func open(_ sealed: [UInt8], key: SymmetricKey, nonce: ChaChaPoly.Nonce) -> [UInt8]? {
        guard sealed.count >= tagSize else { return nil }
        return sealed.withUnsafeBytes { p -> [UInt8]? in
            let split = p.count - tagSize
            guard
                let box = try? ChaChaPoly.SealedBox(
                    nonce: nonce, ciphertext: UnsafeRawBufferPointer(rebasing: p[..<split]),
                    tag: UnsafeRawBufferPointer(rebasing: p[split...])),
                let pt = try? ChaChaPoly.open(box, using: key)
            else { return nil }
            return pt.withUnsafeBytes { Array($0) }
        }
    }

    /// A stanza body as base64 lines of 64 columns, always ending with a short (possibly empty) line.
    static func wrapBody(_ body: [UInt8]) -> [UInt8] {
        let b64 = Array(CryptoBase64.encode(body, padded: false).utf8)
        var out: [UInt8] = []
        var i = 0
        while true {
            let end = min(i + 64, b64.count)
            out.append(contentsOf: b64[i..<end])
            out.append(0x0A)
            if end - i < 64 { break }
            i = end
        }
        return out
    }
}

/// Streaming age v1 encryption to X25519 recipients.
///
/// The header and payload nonce go to the sink when the encryptor is made; plaintext written in any
/// pieces is sealed in 64 KiB STREAM chunks as they fill. A chunk is only sealed once more
/// plaintext follows it, so the final chunk (flagged last) is never empty unless the whole
/// plaintext is, and a plaintext that is a multiple of 64 KiB ends with a full flagged chunk.
///
/// When the sink throws (e.g. the disk is full) the encryptor is failed: the stream written so far
/// is unusable, and every later ``write(_:)-([UInt8])`` or ``finish()`` throws that first error.
package final class AgeEncryptor {
    private let sink: ([UInt8]) throws -> Void
    private let payloadKey: SymmetricKey
    private var buffer: [UInt8]
    private var counter: UInt64 = 0
    private var finished = false
    /// The sink's first error; set, the stream is broken and nothing more is written.
    private var failure: Error?
    /// Plaintext bytes accepted so far.
    package private(set) var plaintextBytes: Int64 = 0

    /// Writes the header to `sink`. Throws ``AgeError`` `.invalidRecipient` for no recipients or a
    /// low-order recipient key.
    package convenience init(recipients: [AgeRecipient], sink: @escaping ([UInt8]) throws -> Void) throws {
        guard !recipients.isEmpty else {
            throw AgeError(.invalidRecipient, "age encryption needs at least one recipient")
        }
        let fileKey = AgeFormat.bytes(SymmetricKey(size: .bits128))
        var stanzas: [UInt8] = []
        for r in recipients {
            let ephemeral = Curve25519.KeyAgreement.PrivateKey()
            let share = Array(ephemeral.publicKey.rawRepresentation)
            guard let shared = AgeFormat.x25519(ephemeral, r.publicKey) else {
                throw AgeError(
                    .invalidRecipient,
                    "age recipient \(r.string) is a low-order X25519 point (the shared secret would be all zero); refusing to encrypt to it"
                )
            }
            let wrapKey = AgeFormat.hkdf(ikm: shared, salt: share + r.publicKey, info: AgeFormat.x25519Label)
            let body = fileKey.withUnsafeBytes { AgeFormat.seal($0, key: wrapKey, nonce: AgeFormat.zeroNonce) }
            stanzas.append(contentsOf: Array("-> X25519 \(CryptoBase64.encode(share, padded: false))\n".utf8))
            stanzas.append(contentsOf: AgeFormat.wrapBody(body))
        }
        try self.init(fileKey: fileKey, stanzas: stanzas, sink: sink)
    }

    /// Writes the header of a passphrase-encrypted file to `sink`: one `-> scrypt <salt> <log2 N>`
    /// stanza with a fresh 16-byte salt (age forbids any other stanza beside it). Deriving the key
    /// takes about a second at the default work factor.
    package convenience init(scrypt recipient: AgeScryptRecipient, sink: @escaping ([UInt8]) throws -> Void) throws {
        let fileKey = AgeFormat.bytes(SymmetricKey(size: .bits128))
        var salt = [UInt8](repeating: 0, count: AgeFormat.scryptSaltSize)
        var rng = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = rng.next() }
        let wrapKey = try AgeFormat.scryptKey(
            passphrase: recipient.passphrase, salt: salt, logN: recipient.workFactor)
        let body = fileKey.withUnsafeBytes { AgeFormat.seal($0, key: wrapKey, nonce: AgeFormat.zeroNonce) }
        var stanza = Array(
            "-> scrypt \(CryptoBase64.encode(salt, padded: false)) \(recipient.workFactor)\n".utf8)
        stanza.append(contentsOf: AgeFormat.wrapBody(body))
        try self.init(fileKey: fileKey, stanzas: stanza, sink: sink)
    }

    /// Writes the version line, the encoded `stanzas`, the MAC and the payload nonce.
    private init(fileKey: [UInt8], stanzas: [UInt8], sink: @escaping ([UInt8]) throws -> Void) throws {
        self.sink = sink
        var header = AgeFormat.versionLine
        header.append(contentsOf: stanzas)
        header.append(contentsOf: Array("---".utf8))
        let macKey = AgeFormat.hkdf(ikm: fileKey, salt: [], info: "header")
        let mac = HMAC<SHA256>.authenticationCode(for: header, using: macKey)
        header.append(contentsOf: Array(" \(CryptoBase64.encode(Array(mac), padded: false))\n".utf8))

        var nonce = [UInt8](repeating: 0, count: AgeFormat.payloadNonceSize)
        var rng = SystemRandomNumberGenerator()
        for i in nonce.indices { nonce[i] = rng.next() }
        payloadKey = AgeFormat.hkdf(ikm: fileKey, salt: nonce, info: "payload")
        buffer = []
        buffer.reserveCapacity(AgeFormat.chunkSize)
        try sink(header + nonce)
    }

    /// Adds plaintext.
    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !finished else { throw DSARError(.processing, "age encryptor: write after finish") }
        if let failure { throw failure }
        var offset = 0
        while offset < bytes.count {
            if buffer.count == AgeFormat.chunkSize { try flush(last: false) }
            let n = min(AgeFormat.chunkSize - buffer.count, bytes.count - offset)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n]))
            offset += n
        }
        plaintextBytes += Int64(bytes.count)
    }

    /// Adds plaintext.
    package func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Seals the final chunk. Further writes throw.
    package func finish() throws {
        guard !finished else { return }
        if let failure { throw failure }
        try flush(last: true)
        finished = true
    }

    private func flush(last: Bool) throws {
        let sealed = buffer.withUnsafeBytes {
            AgeFormat.seal($0, key: payloadKey, nonce: AgeFormat.streamNonce(counter, last: last))
        }
        counter += 1
        buffer.removeAll(keepingCapacity: true)
        do {
            try sink(sealed)
        } catch {
            failure = error
            throw error
        }
    }

    /// Encrypts a whole file to `output` (written atomically, mode 0600).
    @discardableResult
    package static func encrypt(file input: String, recipients: [AgeRecipient], to output: String) throws -> Int64 {
        let inFD = open(input, O_RDONLY | O_CLOEXEC)
        if inFD < 0 { throw DSARError.syscall("cannot open", path: input) }
        defer { close(inFD) }
        return try AgeFileOutput.write(to: output) { put in
            let enc = try AgeEncryptor(recipients: recipients, sink: put)
            var buf = [UInt8](repeating: 0, count: AgeFormat.chunkSize)
            while true {
                let n = buf.withUnsafeMutableBytes { read(inFD, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DSARError.syscall("cannot read", path: input)
                }
                if n == 0 { break }
                try buf.withUnsafeBytes { try enc.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            }
            try enc.finish()
            return enc.plaintextBytes
        }
    }
}

/// Writes a file through a temp sibling that is renamed into place only on success.
enum AgeFileOutput {
    static func write<T>(
        to path: String, mode: mode_t = 0o600, group: gid_t? = nil,
        _ body: (@escaping ([UInt8]) throws -> Void) throws -> T
    )
        throws -> T
    {
        let temp = try TempFile.create(near: path, mode: mode)
        let (tmp, fd) = (temp.path, temp.fd)
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        let result: T
        do {
            defer { close(fd) }
            if let group, fchown(fd, uid_t.max, group) != 0 {
                throw DSARError.syscall("cannot set group \(group) on", path: tmp)
            }
            result = try body { bytes in
                try bytes.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: tmp) }
            }
            if fsync(fd) != 0 { throw DSARError.syscall("cannot fsync", path: tmp) }
        }
        try FileSystem.rename(tmp, to: path)
        ok = true
        try FileSystem.syncDirectory(TempFile.directory(of: path))
        return result
    }
}
