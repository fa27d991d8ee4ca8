import DSARCore
import Foundation
import XCTest

/// Download tokens (``DownloadTokenSigner``), base64url and `Range` headers (``HTTPByteRange``).
final class DownloadTokenTests: XCTestCase {
    let signer = DownloadTokenSigner(pseudonymizer: Pseudonymizer(keyBytes: Array(repeating: 7, count: 32)))
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func token(_ file: DownloadFile = .bundle) -> DownloadToken {
        DownloadToken(
            jobID: UUIDv7.make(), file: file, expires: 1_800_000_600, attempt: 2,
            generation: DownloadToken.generation(manifest: Array("{}".utf8)))
    }

    func testRoundTripEveryFile() {
        for f in DownloadFile.allCases {
            let t = token(f)
            let text = signer.encode(t)
            XCTAssertEqual(text.utf8.count, DownloadTokenSigner.encodedLength)
            XCTAssertNotNil(text.range(of: "^[A-Za-z0-9_-]+$", options: .regularExpression), text)
            XCTAssertEqual(try signer.decode(text, now: now).get(), t)
            XCTAssertEqual(DownloadFile(fileName: f.fileName), f)
        }
    }

    func testEveryAlteredBitIsRefused() throws {
        let raw = try XCTUnwrap(Base64URL.decode(signer.encode(token())))
        for k in 0..<raw.count {
            for bit in 0..<8 {
                var b = raw
                b[k] ^= 1 << bit
                XCTAssertEqual(signer.decode(Base64URL.encode(b), now: now), .failure(.altered), "byte \(k) bit \(bit)")
            }
        }
        // Another spool's key: refused too.
        let other = DownloadTokenSigner(pseudonymizer: Pseudonymizer(keyBytes: Array(repeating: 8, count: 32)))
        XCTAssertEqual(other.decode(signer.encode(token()), now: now), .failure(.altered))
    }

    func testMalformedAndExpired() {
        let text = signer.encode(token())
        for bad in [
            "", String(text.dropLast()), text + "A", "../../keys/pseudonym.key",
            String(repeating: ".", count: text.count),
            String(text.dropLast(2)) + "==",
        ] {
            XCTAssertEqual(signer.decode(bad, now: now), .failure(.malformed), bad)
        }
        // The expiry is inclusive of nothing after it.
        let at = Date(timeIntervalSince1970: 1_800_000_600)
        XCTAssertEqual(signer.decode(text, now: at), .failure(.expired(at)))
        XCTAssertEqual(signer.decode(text, now: at.addingTimeInterval(-1)).map(\.attempt), .success(2))
    }

    func testBase64URLIsCanonical() {
        for n in 0..<10 {
            let b = (0..<n).map { UInt8($0 * 37 & 0xFF) }
            let e = Base64URL.encode(b)
            XCTAssertEqual(Base64URL.decode(e), b)
            XCTAssertEqual(
                e,
                Data(b).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                    .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: ""))
        }
        // "AB" and "AC" would decode to the same byte: only the canonical spelling is accepted.
        XCTAssertEqual(Base64URL.decode("AA"), [0])
        XCTAssertNil(Base64URL.decode("AB"))
    }

    func testRanges() {
        let size: Int64 = 1000
        XCTAssertEqual(HTTPByteRange.parse(nil, size: size), .whole)
        XCTAssertEqual(HTTPByteRange.parse("bytes=0-99", size: size), .bytes(lower: 0, upper: 99))
        XCTAssertEqual(HTTPByteRange.parse("bytes=900-", size: size), .bytes(lower: 900, upper: 999))
        XCTAssertEqual(HTTPByteRange.parse("bytes=-100", size: size), .bytes(lower: 900, upper: 999))
        XCTAssertEqual(HTTPByteRange.parse("bytes=-5000", size: size), .bytes(lower: 0, upper: 999))
        XCTAssertEqual(HTTPByteRange.parse("bytes=990-5000", size: size), .bytes(lower: 990, upper: 999))
        XCTAssertEqual(HTTPByteRange.parse("bytes=1000-", size: size), .unsatisfiable)
        XCTAssertEqual(HTTPByteRange.parse("bytes=1000-2000", size: size), .unsatisfiable)
        XCTAssertEqual(HTTPByteRange.parse("bytes=-0", size: size), .unsatisfiable)
        XCTAssertEqual(HTTPByteRange.parse("bytes=0-", size: 0), .unsatisfiable)
        // Ignored (the whole file): other units, several ranges, bad syntax.
        for h in [
            "items=0-1", "bytes=0-1,5-6", "bytes=5-1", "bytes=a-b", "bytes=-", "bytes=+1-2",
            "bytes=99999999999999999999-",
        ] {
            XCTAssertEqual(HTTPByteRange.parse(h, size: size), .whole, h)
        }
    }

    func testIfNoneMatch() {
        let tag = "\"abc\""
        XCTAssertTrue(OutboxDownload.ifNoneMatch("\"abc\"", matches: tag))
        XCTAssertTrue(OutboxDownload.ifNoneMatch("\"x\", W/\"abc\"", matches: tag))
        XCTAssertTrue(OutboxDownload.ifNoneMatch("*", matches: tag))
        XCTAssertFalse(OutboxDownload.ifNoneMatch("\"abcd\"", matches: tag))
        XCTAssertFalse(OutboxDownload.ifNoneMatch("\"abc\"", matches: nil))
    }
}
