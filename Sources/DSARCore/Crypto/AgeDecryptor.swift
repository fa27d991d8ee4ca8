@preconcurrency import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Buffered reading from a pull function (`read` returns 0 at end of input).
final class AgeInput {
    private let readFn: (UnsafeMutableRawBufferPointer) throws -> Int
    private var buf = [UInt8](repeating: 0, count: 256 * 1024)
    private var start = 0
    private var end = 0
    private var eof = false

    init(_ read: @escaping (UnsafeMutableRawBufferPointer) throws -> Int) { readFn = read }

    private var available: Int { end - start }

    /// Reads more input into the buffer; false at end of input.
    private func fill() throws -> Bool {
        if eof { return false }
        if start > 0 {
            let (s, e) = (start, end)
            buf.withUnsafeMutableBytes { p in
                if e > s { p.baseAddress!.copyMemory(from: p.baseAddress! + s, byteCount: e - s) }
            }
            end -= start
            start = 0
        }
        if end == buf.count { buf.append(contentsOf: [UInt8](repeating: 0, count: buf.count)) }
        let e = end
        let n = try buf.withUnsafeMutableBytes { try readFn(UnsafeMutableRawBufferPointer(rebasing: $0[e...])) }
        if n <= 0 {
            eof = true
            return false
        }
        end += n
        return true
    }

    /// The next line including its LF; nil at end of input. Throws `tooLong` beyond `limit` bytes
    /// and `unterminated` if input ends inside a line.
    enum LineError: Error { case tooLong, unterminated }

    func readLine(limit: Int) throws -> [UInt8]? {
        var scanned = 0
        while true {
            let found: Int? = buf.withUnsafeBytes { p in
                var i = start + scanned
                while i < end {
                    if p[i] == 0x0A { return i }
                    i += 1
                }
                return nil
            }
            if let i = found {
                let line = Array(buf[start...i])
                start = i + 1
                return line
            }
            scanned = available
            if scanned > limit { throw LineError.tooLong }
            if try !fill() {
                if available == 0 { return nil }
                throw LineError.unterminated
            }
        }
    }

    /// Up to `n` bytes; fewer only at end of input.
    func read(upTo n: Int) throws -> [UInt8] {
        while available < n {
            if try !fill() { break }
        }
        let k = min(n, available)
        let s = start
        let out = buf.withUnsafeBytes { Array(UnsafeRawBufferPointer(rebasing: $0[s..<s + k])) }
        start += k
        return out
    }

    /// True when no byte is left.
    func atEnd() throws -> Bool {
        if available > 0 { return false }
        return try !fill()
    }
}

/// A parsed age header.
struct AgeHeader {
    struct Stanza {
        var args: [String]
        var body: [UInt8]
    }

    var stanzas: [Stanza] = []
    /// The header bytes covered by the MAC: from the version line through `---`.
    var macInput: [UInt8] = []
    var mac: [UInt8] = []

    static let maxLine = 64 * 1024
    static let maxHeader = 16 << 20

    /// Parses strictly per C2SP age.md (ABNF `header`), as the reference implementation does.
    static func parse(_ input: AgeInput) throws -> AgeHeader {
        func fail(_ why: String) -> AgeError { AgeError(.headerFailure, "age header: \(why)") }
        func line() throws -> [UInt8]? {
            do {
                return try input.readLine(limit: maxLine)
            } catch AgeInput.LineError.tooLong {
                throw fail("line longer than \(maxLine) bytes")
            } catch AgeInput.LineError.unterminated {
                throw fail("input ends inside a header line")
            }
        }
        var h = AgeHeader()
        guard let first = try line() else { throw fail("the file is empty") }
        guard first == AgeFormat.versionLine else {
            if first.starts(with: Array("age-encryption.org/".utf8)) {
                throw fail("unsupported version \"\(printable(first))\" (only age-encryption.org/v1 is supported)")
            }
            throw fail("not an age file (bad version line \"\(printable(first))\")")
        }
        h.macInput = first
        while true {
            guard let l = try line() else { throw fail("input ends before the header MAC line") }
            if h.macInput.count + l.count > maxHeader { throw fail("header larger than \(maxHeader) bytes") }
            if l.starts(with: Array("---".utf8)) {
                // end = "--- " 43base64char LF
                let content = l.dropLast()
                guard content.count == 4 + 43, content.starts(with: Array("--- ".utf8)),
                    let mac = CryptoBase64.decodeUnpadded(content.dropFirst(4)), mac.count == 32
                else { throw fail("malformed MAC line \"\(printable(l))\"") }
                h.macInput.append(contentsOf: Array("---".utf8))
                h.mac = mac
                break
            }
            guard l.starts(with: Array("-> ".utf8)) else {
                throw fail("expected a recipient stanza or the MAC line, got \"\(printable(l))\"")
            }
            h.macInput.append(contentsOf: l)
            // arg-line = "-> " argument *(SP argument) LF; argument = 1*VCHAR
            let argBytes = l.dropFirst(3).dropLast()
            let parts = argBytes.split(separator: 0x20, omittingEmptySubsequences: false)
            for p in parts where p.isEmpty || !p.allSatisfy({ (0x21...0x7E).contains($0) }) {
                throw fail("malformed stanza line \"\(printable(l))\"")
            }
            var stanza = Stanza(args: parts.map { String(decoding: $0, as: UTF8.self) }, body: [])
            // body: *full-line final-line, full-line = 64base64char LF, final-line = *63base64char LF
            while true {
                guard let b = try line() else { throw fail("input ends inside a stanza body") }
                if h.macInput.count + b.count > maxHeader { throw fail("header larger than \(maxHeader) bytes") }
                h.macInput.append(contentsOf: b)
                let text = b.dropLast()
                guard text.count <= 64, let decoded = CryptoBase64.decodeUnpadded(text) else {
                    if b.starts(with: Array("---".utf8)) || b.starts(with: Array("->".utf8)) {
                        throw fail("stanza \"\(stanza.args[0])\" ends without a short body line")
                    }
                    throw fail("malformed stanza body line \"\(printable(b))\"")
                }
                stanza.body.append(contentsOf: decoded)
                if text.count < 64 { break }
            }
            h.stanzas.append(stanza)
        }
        if h.stanzas.isEmpty { throw fail("no recipient stanzas") }
        return h
    }

    static func printable<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var s = ""
        for b in bytes.prefix(80) {
            switch b {
            case 0x0A: s += "\\n"
            case 0x0D: s += "\\r"
            case 0x20...0x7E: s.append(Character(Unicode.Scalar(b)))
            default: s += String(format: "\\x%02x", b)
            }
        }
        return bytes.count > 80 ? s + "…" : s
    }
}

/// Streaming, strict age v1 decryption with X25519 identities and an optional passphrase (scrypt)
/// identity.
package enum AgeDecryptor {
    /// Decrypts an in-memory age file, handing plaintext to `sink` one authenticated chunk at a time.
    /// Returns the plaintext length. On failure the thrown ``AgeError`` says how many plaintext bytes
    /// were released first. `scrypt` opens a passphrase-encrypted file.
    @discardableResult
    package static func decrypt(
        _ input: [UInt8], identities: [AgeIdentity], scrypt: AgeScryptIdentity? = nil, sink: ([UInt8]) throws -> Void
    ) throws
        -> Int64
    {
        var offset = 0
        let source = AgeInput { dest in
            let n = min(dest.count, input.count - offset)
            if n > 0 {
                input.withUnsafeBytes { src in
                    dest.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<offset + n]))
                }
            }
            offset += n
            return n
        }
        return try decrypt(source, identities: identities, scrypt: scrypt, sink: sink)
    }

    /// Decrypts from a pull function that fills a buffer and returns the byte count (0 at end).
    @discardableResult
    package static func decrypt(
        reader: @escaping (UnsafeMutableRawBufferPointer) throws -> Int, identities: [AgeIdentity],
        scrypt: AgeScryptIdentity? = nil, sink: ([UInt8]) throws -> Void
    ) throws -> Int64 {
        try decrypt(AgeInput(reader), identities: identities, scrypt: scrypt, sink: sink)
    }

    /// Decrypts the age file at `file` into `output`, which is created (mode 0600) only if the whole
    /// file decrypts and authenticates; nothing is left behind on failure.
    @discardableResult
    package static func decrypt(file: String, identities: [AgeIdentity], to output: String) throws -> Int64 {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw DSARError.syscall("cannot open", path: file) }
        defer { close(fd) }
        let reader: (UnsafeMutableRawBufferPointer) throws -> Int = { dest in
            while true {
                let n = read(fd, dest.baseAddress, dest.count)
                if n >= 0 { return n }
                if errno == EINTR { continue }
                throw DSARError.syscall("cannot read", path: file)
            }
        }
        return try AgeFileOutput.write(to: output) { put in
            try decrypt(AgeInput(reader), identities: identities, sink: put)
        }
    }

    static func decrypt(
        _ input: AgeInput, identities: [AgeIdentity], scrypt: AgeScryptIdentity? = nil,
        sink: ([UInt8]) throws -> Void
    ) throws -> Int64 {
        let header = try AgeHeader.parse(input)
        if header.stanzas.contains(where: { $0.args.first == "scrypt" }) && header.stanzas.count != 1 {
            throw AgeError(.headerFailure, "age header: an scrypt stanza must be the only stanza")
        }
        var fileKey: [UInt8]? = nil
        for id in identities {
            if let k = try unwrap(header.stanzas, identity: id) {
                fileKey = k
                break
            }
        }
        if fileKey == nil, let scrypt {
            fileKey = try unwrap(header.stanzas, scrypt: scrypt)
        }
        guard let fileKey else {
            if scrypt != nil, header.stanzas.first?.args.first == "scrypt" {
                throw AgeError(.noMatch, "the passphrase does not open this age file (wrong passphrase)")
            }
            let n = header.stanzas.filter { $0.args.first == "X25519" }.count
            throw AgeError(
                .noMatch,
                "no identity matched any of the file's recipients (\(header.stanzas.count) stanza(s), \(n) X25519; \(identities.count) identit\(identities.count == 1 ? "y" : "ies") tried)"
            )
        }
        let macKey = AgeFormat.hkdf(ikm: fileKey, salt: [], info: "header")
        guard HMAC<SHA256>.isValidAuthenticationCode(header.mac, authenticating: header.macInput, using: macKey) else {
            throw AgeError(.hmacFailure, "age header MAC does not verify: the header was modified")
        }
        let nonce = try input.read(upTo: AgeFormat.payloadNonceSize)
        guard nonce.count == AgeFormat.payloadNonceSize else {
            throw AgeError(.headerFailure, "age file ends before the payload nonce")
        }
        let key = AgeFormat.hkdf(ikm: fileKey, salt: nonce, info: "payload")
        return try decryptPayload(input, key: key, sink: sink)
    }

    /// Unwraps the file key with one identity: nil if no X25519 stanza is for it; throws a header
    /// failure for a malformed X25519 stanza or a low-order share.
    static func unwrap(_ stanzas: [AgeHeader.Stanza], identity: AgeIdentity) throws -> [UInt8]? {
        let priv = identity.privateKey
        let ourPublic = Array(priv.publicKey.rawRepresentation)
        for s in stanzas where s.args.first == "X25519" {
            guard s.args.count == 2 else {
                throw AgeError(.headerFailure, "age header: X25519 stanza with \(s.args.count - 1) arguments (want 1)")
            }
            guard let share = CryptoBase64.decodeUnpadded(Array(s.args[1].utf8)), share.count == 32 else {
                throw AgeError(.headerFailure, "age header: X25519 stanza share is not canonical base64 of 32 bytes")
            }
            guard s.body.count == 32 else {
                throw AgeError(.headerFailure, "age header: X25519 stanza body is \(s.body.count) bytes (want 32)")
            }
            guard let shared = AgeFormat.x25519(priv, share) else {
                throw AgeError(.headerFailure, "age header: X25519 share is a low-order point (all-zero shared secret)")
            }
            let wrapKey = AgeFormat.hkdf(ikm: shared, salt: share + ourPublic, info: AgeFormat.x25519Label)
            if let fileKey = AgeFormat.open(s.body, key: wrapKey, nonce: AgeFormat.zeroNonce) {
                return fileKey
            }
        }
        return nil
    }

    /// Unwraps the file key with a passphrase: nil if no scrypt stanza opens with it; throws a header
    /// failure for a malformed scrypt stanza (arguments, salt, work factor, body size), checked as
    /// the reference implementation does before any key derivation.
    static func unwrap(_ stanzas: [AgeHeader.Stanza], scrypt: AgeScryptIdentity) throws -> [UInt8]? {
        func fail(_ why: String) -> AgeError { AgeError(.headerFailure, "age header: scrypt stanza: \(why)") }
        for s in stanzas where s.args.first == "scrypt" {
            guard s.args.count == 3 else { throw fail("\(s.args.count - 1) arguments (want 2: salt, log2 N)") }
            guard let salt = CryptoBase64.decodeUnpadded(Array(s.args[1].utf8)) else {
                throw fail("the salt is not canonical unpadded base64")
            }
            guard salt.count == AgeFormat.scryptSaltSize else {
                throw fail("the salt is \(salt.count) bytes (want \(AgeFormat.scryptSaltSize))")
            }
            // Decimal without sign or leading zero: 1*DIGIT with a non-zero first digit.
            let w = Array(s.args[2].utf8)
            guard let first = w.first, (0x31...0x39).contains(first), w.allSatisfy({ (0x30...0x39).contains($0) })
            else {
                throw fail("the work factor \"\(s.args[2])\" is not a decimal number from 1 without leading zeros")
            }
            guard w.count <= 2, let logN = Int(s.args[2]), logN <= AgeScryptIdentity.maxWorkFactor else {
                throw fail(
                    "the work factor \(s.args[2]) is above the maximum \(AgeScryptIdentity.maxWorkFactor) (it would take too long to open)"
                )
            }
            guard s.body.count == AgeFormat.fileKeySize + AgeFormat.tagSize else {
                throw fail("the body is \(s.body.count) bytes (want \(AgeFormat.fileKeySize + AgeFormat.tagSize))")
            }
            let key = try AgeFormat.scryptKey(passphrase: scrypt.passphrase, salt: salt, logN: logN)
            if let fileKey = AgeFormat.open(s.body, key: key, nonce: AgeFormat.zeroNonce) { return fileKey }
        }
        return nil
    }

    static func decryptPayload(_ input: AgeInput, key: SymmetricKey, sink: ([UInt8]) throws -> Void) throws -> Int64 {
        var counter: UInt64 = 0
        var released: Int64 = 0
        func fail(_ why: String) -> AgeError {
            AgeError(.payloadFailure, "age payload: \(why)", plaintextBytesReleased: released)
        }
        while true {
            let chunk = try input.read(upTo: AgeFormat.encryptedChunkSize)
            if chunk.isEmpty {
                throw fail(
                    counter == 0 ? "no chunks (the file is truncated)" : "no final chunk (the file is truncated)")
            }
            if chunk.count < AgeFormat.encryptedChunkSize {
                // A short chunk must be the last one, and may be empty only as the only chunk.
                if counter > 0 && chunk.count == AgeFormat.tagSize {
                    throw fail("the final chunk is empty")
                }
                guard let pt = AgeFormat.open(chunk, key: key, nonce: AgeFormat.streamNonce(counter, last: true)) else {
                    throw fail("chunk \(counter) does not authenticate (tampered or truncated)")
                }
                try sink(pt)
                released += Int64(pt.count)
                return released
            }
            if let pt = AgeFormat.open(chunk, key: key, nonce: AgeFormat.streamNonce(counter, last: false)) {
                try sink(pt)
                released += Int64(pt.count)
                counter += 1
                continue
            }
            // A full-size chunk may be the final one.
            guard let pt = AgeFormat.open(chunk, key: key, nonce: AgeFormat.streamNonce(counter, last: true)) else {
                throw fail("chunk \(counter) does not authenticate (tampered or truncated)")
            }
            try sink(pt)
            released += Int64(pt.count)
            guard try input.atEnd() else { throw fail("trailing data after the final chunk") }
            return released
        }
    }
}
