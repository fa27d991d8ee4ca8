import Foundation

/// RFC 3339 timestamps in UTC, as written into every record and manifest.
package enum Timestamp {
    /// `2026-11-20T09:00:00Z` (whole seconds, UTC).
    package static func format(_ date: Date) -> String {
        let t = time_t(floor(date.timeIntervalSince1970))
        var tmv = tm()
        var tt = t
        gmtime_r(&tt, &tmv)
        // Written as bytes: `String(format:)` went through Foundation's formatter on every call (a job
        // formats a few dozen timestamps for its record, journal entries and report).
        var b = [UInt8](repeating: 0, count: 20)
        func put(_ v: Int, _ at: Int, _ width: Int) {
            var v = v
            for k in stride(from: at + width - 1, through: at, by: -1) {
                b[k] = UInt8(0x30 + v % 10)
                v /= 10
            }
        }
        let year = Int(tmv.tm_year) + 1900
        guard (0...9999).contains(year) else {
            return String(
                format: "%04d-%02d-%02dT%02d:%02d:%02dZ", year, Int(tmv.tm_mon) + 1, Int(tmv.tm_mday),
                Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec))
        }
        put(year, 0, 4)
        b[4] = 0x2D
        put(Int(tmv.tm_mon) + 1, 5, 2)
        b[7] = 0x2D
        put(Int(tmv.tm_mday), 8, 2)
        b[10] = 0x54
        put(Int(tmv.tm_hour), 11, 2)
        b[13] = 0x3A
        put(Int(tmv.tm_min), 14, 2)
        b[16] = 0x3A
        put(Int(tmv.tm_sec), 17, 2)
        b[19] = 0x5A
        return String(decoding: b, as: UTF8.self)
    }

    /// `2026-11-20` (UTC).
    package static func formatDay(_ date: Date) -> String { String(format(date).prefix(10)) }

    /// Parses RFC 3339 (`Z` or `±hh:mm` offset, optional fraction); nil when malformed.
    package static func parse(_ s: String) -> Date? {
        let b = Array(s.utf8)
        func num(_ from: Int, _ len: Int) -> Int? {
            guard from + len <= b.count else { return nil }
            var v = 0
            for k in from..<(from + len) {
                guard b[k] >= 0x30 && b[k] <= 0x39 else { return nil }
                v = v * 10 + Int(b[k] - 0x30)
            }
            return v
        }
        guard b.count >= 20, let y = num(0, 4), b[4] == 0x2D, let mo = num(5, 2), b[7] == 0x2D, let d = num(8, 2),
            b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == 0x20,
            let h = num(11, 2), b[13] == 0x3A, let mi = num(14, 2), b[16] == 0x3A, let se = num(17, 2)
        else { return nil }
        guard (1...12).contains(mo), d >= 1, d <= Calendar.daysIn(year: y, month: mo), h < 24, mi < 60, se < 61
        else { return nil }
        var k = 19
        var frac = 0.0
        if k < b.count && b[k] == 0x2E {
            k += 1
            var scale = 0.1
            let start = k
            while k < b.count && b[k] >= 0x30 && b[k] <= 0x39 {
                frac += Double(b[k] - 0x30) * scale
                scale /= 10
                k += 1
            }
            if k == start { return nil }
        }
        guard k < b.count else { return nil }
        var offset = 0
        if b[k] == UInt8(ascii: "Z") || b[k] == UInt8(ascii: "z") {
            k += 1
        } else if b[k] == 0x2B || b[k] == 0x2D {
            // RFC 3339 time-numoffset: hours 00–23, minutes 00–59.
            guard let oh = num(k + 1, 2), k + 3 < b.count, b[k + 3] == 0x3A, let om = num(k + 4, 2), oh < 24, om < 60
            else { return nil }
            offset = (oh * 3600 + om * 60) * (b[k] == 0x2D ? -1 : 1)
            k += 6
        } else {
            return nil
        }
        guard k == b.count else { return nil }
        let days = Calendar.daysFromCivil(y, mo, d)
        let secs = days * 86400 + h * 3600 + mi * 60 + min(se, 59) - offset
        return Date(timeIntervalSince1970: Double(secs) + frac)
    }

    /// Civil-calendar arithmetic in UTC, without Foundation's Calendar (exact and locale-free).
    package enum Calendar {
        /// Days in a month of the proleptic Gregorian calendar.
        package static func daysIn(year: Int, month: Int) -> Int {
            switch month {
            case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
            case 4, 6, 9, 11: return 30
            default: return 31
            }
        }

        /// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
        package static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
            let y = m <= 2 ? y0 - 1 : y0
            let era = (y >= 0 ? y : y - 399) / 400
            let yoe = y - era * 400
            let mp = (m + 9) % 12
            let doy = (153 * mp + 2) / 5 + d - 1
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
            return era * 146097 + doe - 719468
        }

        /// The civil date (year, month, day) of a day count since 1970-01-01.
        package static func civil(fromDays z0: Int) -> (year: Int, month: Int, day: Int) {
            let z = z0 + 719468
            let era = (z >= 0 ? z : z - 146096) / 146097
            let doe = z - era * 146097
            let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
            let y = yoe + era * 400
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
            let mp = (5 * doy + 2) / 153
            let d = doy - (153 * mp + 2) / 5 + 1
            let m = mp < 10 ? mp + 3 : mp - 9
            return (m <= 2 ? y + 1 : y, m, d)
        }

        /// `date` plus `months` calendar months, the day clamped to the target month's last day
        /// (31 January + 1 month = 28/29 February); the time of day is kept.
        package static func addingMonths(_ months: Int, to date: Date) -> Date {
            let secs = Int(floor(date.timeIntervalSince1970))
            let days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400
            let tod = secs - days * 86400
            let (y, m, d) = civil(fromDays: days)
            let total = y * 12 + (m - 1) + months
            let ny = total >= 0 ? total / 12 : (total - 11) / 12
            let nm = total - ny * 12 + 1
            let nd = min(d, daysIn(year: ny, month: nm))
            return Date(timeIntervalSince1970: Double(daysFromCivil(ny, nm, nd) * 86400 + tod))
        }

        /// `date` plus whole days.
        package static func addingDays(_ n: Int, to date: Date) -> Date { date.addingTimeInterval(Double(n) * 86400) }
    }
}
