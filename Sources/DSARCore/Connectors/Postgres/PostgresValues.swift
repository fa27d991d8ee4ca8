import CLibPQ
import Foundation

/// How PostgreSQL values travel: parameters as text (arrays as array literals), results typed by
/// the column's type OID.
package enum PostgresValues {
    /// The text form of a parameter (nil: SQL NULL). Arrays become array literals (`{"a","b"}`).
    /// PostgreSQL text cannot hold a NUL byte, so a value with one is refused rather than cut short.
    package static func text(of p: LiveParam) throws -> String? {
        switch p {
        case .null: return nil
        case .integer(let i): return String(i)
        case .text(let s):
            try refuseNUL(s)
            return s
        case .integerArray(let a): return "{" + a.map(String.init).joined(separator: ",") + "}"
        case .textArray(let a):
            for s in a { try refuseNUL(s) }
            return arrayLiteral(a)
        }
    }

    /// A text array literal: every element double-quoted, `"` and `\` escaped with a backslash, so
    /// commas, braces, spaces and the word NULL stay plain text.
    package static func arrayLiteral(_ elements: [String]) -> String {
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (i, s) in elements.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            for b in s.utf8 {
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                out.append(b)
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    static func refuseNUL(_ s: String) throws {
        if s.utf8.contains(0) {
            throw DSARError(
                .invalidInput, "a value to search for contains a NUL byte, which PostgreSQL text cannot hold")
        }
    }

    /// What kind of values a type OID holds.
    package static func kind(ofType oid: UInt32) -> LiveColumnKind {
        switch oid {
        case 20, 21, 23, 26: return .integer  // int8, int2, int4, oid
        case 700, 701, 1700: return .decimal  // float4, float8, numeric
        case 16: return .bool
        case 17: return .bytes
        case 1082, 1083, 1114, 1184, 1266: return .timestamp  // date, time, timestamp, timestamptz, timetz
        case 114, 3802: return .json
        // name, text, bpchar, varchar, unknown: compared with text directly. uuid, xml, "char",
        // citext… are `.other` (compared as `CAST(col AS text)`, redacted to NULL).
        case 19, 25, 1042, 1043, 705: return .text
        default: return .other
        }
    }

    /// One result value (text format) of a column of type `oid`.
    static func value(_ bytes: UnsafePointer<CChar>, length: Int, type oid: UInt32) -> LiveValue {
        let raw = UnsafeRawBufferPointer(start: bytes, count: length)
        switch kind(ofType: oid) {
        case .integer:
            let s = String(decoding: raw, as: UTF8.self)
            return Int64(s).map(LiveValue.integer) ?? .decimal(s)
        case .decimal:
            let s = String(decoding: raw, as: UTF8.self)
            // NaN and ±Infinity are not JSON numbers.
            return s.utf8.contains(where: { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
                ? .decimal(s) : .text(s)
        case .bool:
            return .bool(length > 0 && raw[0] == UInt8(ascii: "t"))
        case .bytes:
            var n = 0
            guard let p = PQunescapeBytea(UnsafeRawPointer(bytes).assumingMemoryBound(to: UInt8.self), &n) else {
                return .bytes([])
            }
            defer { PQfreemem(p) }
            return .bytes(Array(UnsafeBufferPointer(start: p, count: n)))
        case .timestamp:
            return rfc3339(Array(raw), type: oid)
        case .json:
            return .json(String(decoding: raw, as: UTF8.self))
        default:
            return .text(String(decoding: raw, as: UTF8.self))
        }
    }

    /// ISO output (`2026-11-28 09:30:00.5+00`, DateStyle ISO, TimeZone UTC) as RFC 3339
    /// (`2026-11-28T09:30:00.5Z`); `infinity` and BC dates stay as the server wrote them.
    static func rfc3339(_ b: [UInt8], type oid: UInt32) -> LiveValue {
        var out = b
        if out.count >= 10 && out[0] >= UInt8(ascii: "0") && out[0] <= UInt8(ascii: "9")
            && !out.contains(UInt8(ascii: "B"))
        {
            if let space = out.firstIndex(of: UInt8(ascii: " ")) { out[space] = UInt8(ascii: "T") }
        }
        if oid == 1184 || oid == 1266 {
            // The offset: +00 → Z, +05:30 stays, +05 → +05:00.
            let tail = oid == 1184 ? (out.firstIndex(of: UInt8(ascii: "T")) ?? 0) : 0
            if let sign = out[tail...].lastIndex(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") }),
                sign > tail + 1
            {
                let offset = Array(out[(sign + 1)...])
                if offset.allSatisfy({ $0 == UInt8(ascii: "0") || $0 == UInt8(ascii: ":") }) {
                    out.replaceSubrange(sign..., with: [UInt8(ascii: "Z")])
                } else if offset.count == 2 {
                    out += Array(":00".utf8)
                }
            }
        }
        return .timestamp(String(decoding: out, as: UTF8.self))
    }
}
