import DSARCore
import DSARTestSupport
import Foundation
import XCTest

final class TimestampTests: XCTestCase {
    /// The byte formatter writes exactly what `String(format:)` over `gmtime_r` wrote before it, for
    /// seeded random instants from 1970 to 9999, fractions of a second included (they are cut, not rounded).
    func testFormatEqualsPrintfOverGmtime() {
        var rng = SplitMix64(state: 20_261_201)
        let maxSeconds = 253_402_300_799.0  // 9999-12-31T23:59:59Z
        var instants: [Double] = [0, 0.999, 951_782_400, 4_107_542_399, maxSeconds, 1_782_950_400.5]
        for _ in 0..<20_000 { instants.append(Double(rng.next() % UInt64(maxSeconds)) + Double(rng.int(1000)) / 1000) }
        for t in instants {
            var tt = time_t(floor(t))
            var tmv = tm()
            gmtime_r(&tt, &tmv)
            let expected = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1,
                Int(tmv.tm_mday), Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec))
            let got = Timestamp.format(Date(timeIntervalSince1970: t))
            XCTAssertEqual(got, expected, "instant \(t)")
            if got != expected { return }
            XCTAssertEqual(Timestamp.parse(got)?.timeIntervalSince1970, floor(t), "round trip of \(got)")
        }
        XCTAssertEqual(Timestamp.format(Date(timeIntervalSince1970: 1_795_510_800)), "2026-11-24T09:00:00Z")
        XCTAssertEqual(Timestamp.formatDay(Date(timeIntervalSince1970: 1_795_510_800)), "2026-11-24")
    }
}
