@preconcurrency import Crypto
import Foundation

/// A file of a published outbox entry that `dsar serve` hands out over a download link.
package enum DownloadFile: UInt8, Sendable, CaseIterable {
    /// `bundle.zip.age`: the export, encrypted to the team's recipients (the default).
    case bundle = 1
    /// `manifest.json`: the signed description of the entry.
    case manifest = 2
    /// `manifest.json.sig`: its SSHSIG signature.
    case signature = 3
    /// `subject.zip.age`: the copy for the data subject that `dsar deliver` made.
    case subjectCopy = 4

    /// The file's name inside `outbox/<job-id>/`.
    package var fileName: String {
        switch self {
        case .bundle: "bundle.zip.age"
        case .manifest: "manifest.json"
        case .signature: "manifest.json.sig"
        case .subjectCopy: SubjectDelivery.fileName
        }
    }

    /// The `Content-Type` it is served with.
    package var contentType: String { self == .manifest ? "application/json" : "application/octet-stream" }

    /// The file named `name` (`bundle.zip.age`, `manifest.json`, `manifest.json.sig`, `subject.zip.age`).
    package init?(fileName name: String) {
        guard let f = DownloadFile.allCases.first(where: { $0.fileName == name }) else { return nil }
        self = f
    }
}

/// What a download link stands for: one file of one published entry, until `expires`.
///
/// The entry is pinned by the job's attempt number and the first bytes of its manifest's SHA-256,
/// so a link made before `dsar retry` (or before the entry expired and was published again) never
/// serves the files of another attempt.
package struct DownloadToken: Sendable, Equatable {
    /// The job (lower-case canonical UUID).
    package var jobID: String
    /// Which file of its entry.
    package var file: DownloadFile
    /// Unix seconds after which the link is refused.
    package var expires: Int64
    /// The job record's `attempts` when the link was made.
    package var attempt: UInt32
    /// The first 8 bytes of the SHA-256 of the entry's `manifest.json` (zeros when it has none).
    package var generation: [UInt8]

    /// A token.
    package init(jobID: String, file: DownloadFile, expires: Int64, attempt: UInt32, generation: [UInt8]) {
        self.jobID = jobID
        self.file = file
        self.expires = expires
        self.attempt = attempt
        self.generation = generation
    }

    /// The generation of an entry from its manifest's bytes (nil: the entry has no manifest).
    package static func generation(manifest: [UInt8]?) -> [UInt8] {
        guard let manifest else { return [UInt8](repeating: 0, count: 8) }
        return Array(SHA256.hash(data: manifest)).prefix(8).map { $0 }
    }
}

/// Makes and checks download tokens: HMAC-SHA256 under a key derived (HKDF) from the spool's
/// pseudonym key for this purpose alone, so a token can be neither forged nor confused with any
/// other keyed tag of the spool.
///
/// Wire form (base64url, no padding, 94 characters): version `1`, file, expiry (8 bytes, big
/// endian), attempt (4), generation (8), job id (16), then the 32-byte MAC over all of it. It holds
/// no personal data: a job id, a file kind, two numbers and a hash prefix.
package struct DownloadTokenSigner: Sendable {
    private let key: SymmetricKey
    static let version: UInt8 = 1
    static let bodyLength = 1 + 1 + 8 + 4 + 8 + 16
    static let macLength = 32
    /// The length of an encoded token.
    package static let encodedLength = ((bodyLength + macLength) * 4 + 2) / 3

    /// The signer of a spool (its key derived from the pseudonym key).
    package init(pseudonymizer: Pseudonymizer) {
        key = pseudonymizer.derivedKey(purpose: "dsar serve download token v1")
    }

    /// Why a token is refused.
    package enum Refusal: Error, Sendable, Equatable {
        /// Not a token of this shape (wrong length, characters, version or file).
        case malformed
        /// The MAC does not match: altered, or made under another spool's key.
        case altered
        /// Valid, but its time is over.
        case expired(Date)
    }

    /// The token's text for a download URL.
    package func encode(_ t: DownloadToken) -> String {
        let body = DownloadTokenSigner.body(t)
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: key)
        return Base64URL.encode(body + Array(mac))
    }

    /// Checks a token's text (MAC first, in constant time, then the expiry against `now`).
    package func decode(_ text: String, now: Date) -> Result<DownloadToken, Refusal> {
        guard text.utf8.count == DownloadTokenSigner.encodedLength, let raw = Base64URL.decode(text),
            raw.count == DownloadTokenSigner.bodyLength + DownloadTokenSigner.macLength
        else { return .failure(.malformed) }
        let body = Array(raw[0..<DownloadTokenSigner.bodyLength])
        let mac = Array(raw[DownloadTokenSigner.bodyLength...])
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: key) else {
            return .failure(.altered)
        }
        guard body[0] == DownloadTokenSigner.version, let file = DownloadFile(rawValue: body[1]) else {
            return .failure(.malformed)
        }
        func be(_ range: Range<Int>) -> UInt64 { body[range].reduce(0) { $0 << 8 | UInt64($1) } }
        let expires = Int64(bitPattern: be(2..<10))
        let attempt = UInt32(truncatingIfNeeded: be(10..<14))
        let generation = Array(body[14..<22])
        let hex = Hex.encode(body[22..<38])
        let h = Array(hex)
        let jobID =
            String(h[0..<8]) + "-" + String(h[8..<12]) + "-" + String(h[12..<16]) + "-" + String(h[16..<20]) + "-"
            + String(h[20..<32])
        guard Double(expires) > now.timeIntervalSince1970 else {
            return .failure(.expired(Date(timeIntervalSince1970: Double(expires))))
        }
        return .success(
            DownloadToken(jobID: jobID, file: file, expires: expires, attempt: attempt, generation: generation))
    }

    static func body(_ t: DownloadToken) -> [UInt8] {
        var b: [UInt8] = [version, t.file.rawValue]
        let e = UInt64(bitPattern: t.expires)
        for k in (0..<8).reversed() { b.append(UInt8(truncatingIfNeeded: e >> (8 * UInt64(k)))) }
        for k in (0..<4).reversed() { b.append(UInt8(truncatingIfNeeded: t.attempt >> (8 * UInt32(k)))) }
        let g = t.generation + [UInt8](repeating: 0, count: max(0, 8 - t.generation.count))
        b += g.prefix(8)
        let id = Hex.decode(t.jobID.replacingOccurrences(of: "-", with: "")) ?? []
        b += id.count == 16 ? id : [UInt8](repeating: 0, count: 16)
        return b
    }
}

/// base64url without padding (RFC 4648 §5), strict: any other character is refused.
package enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Bytes as base64url, no padding.
    package static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var k = 0
        while k < bytes.count {
            let n = min(3, bytes.count - k)
            var v = UInt32(bytes[k]) << 16
            if n > 1 { v |= UInt32(bytes[k + 1]) << 8 }
            if n > 2 { v |= UInt32(bytes[k + 2]) }
            for j in 0..<(n + 1) { out.append(alphabet[Int((v >> (18 - 6 * UInt32(j))) & 0x3F)]) }
            k += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// base64url (no padding) to bytes; nil for any character outside the alphabet or a bad length.
    package static func decode(_ s: String) -> [UInt8]? {
        let b = Array(s.utf8)
        guard b.count % 4 != 1 else { return nil }
        func v(_ c: UInt8) -> UInt32? {
            switch c {
            case 0x41...0x5A: UInt32(c - 0x41)
            case 0x61...0x7A: UInt32(c - 0x61 + 26)
            case 0x30...0x39: UInt32(c - 0x30 + 52)
            case 0x2D: 62
            case 0x5F: 63
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(b.count * 3 / 4)
        var k = 0
        while k < b.count {
            let n = min(4, b.count - k)
            var acc: UInt32 = 0
            for j in 0..<4 {
                let d: UInt32
                if j < n {
                    guard let x = v(b[k + j]) else { return nil }
                    d = x
                } else {
                    d = 0
                }
                acc = acc << 6 | d
            }
            out.append(UInt8(truncatingIfNeeded: acc >> 16))
            if n > 2 { out.append(UInt8(truncatingIfNeeded: acc >> 8)) }
            if n > 3 { out.append(UInt8(truncatingIfNeeded: acc)) }
            k += 4
        }
        // Only the canonical spelling: unused low bits set would give a second text for the same bytes.
        guard encode(out) == s else { return nil }
        return out
    }
}
