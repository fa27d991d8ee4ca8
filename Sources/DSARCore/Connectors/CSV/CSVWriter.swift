#if canImport(Glibc)
import Glibc
#endif

/// Encodes CSV fields and records (RFC 4180), for exports and rewritten files.
package enum CSVWriter {
    /// Encodes one field: quoted only if needed (delimiter, quote, CR, LF, or leading/trailing space or tab),
    /// quotes doubled.
    package static func field(_ bytes: [UInt8], delimiter: UInt8) -> [UInt8] {
        let quote = CSVScanner.quote
        var needs = false
        if let first = bytes.first, let last = bytes.last {
            needs = first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09
        }
        if !needs {
            for b in bytes where b == delimiter || b == quote || b == CSVScanner.cr || b == CSVScanner.lf {
                needs = true
                break
            }
        }
        guard needs else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 2)
        out.append(quote)
        for b in bytes {
            out.append(b)
            if b == quote { out.append(quote) }
        }
        out.append(quote)
        return out
    }

    /// Encodes one record: fields joined by `delimiter`, then `terminator`.
    ///
    /// A record of one empty field is written as `""` so that it does not read back as a blank line.
    package static func record(_ fields: [[UInt8]], delimiter: UInt8, terminator: [UInt8] = [0x0D, 0x0A]) -> [UInt8] {
        var out: [UInt8] = []
        if fields.count == 1 && fields[0].isEmpty {
            out = [CSVScanner.quote, CSVScanner.quote]
        } else {
            for (i, f) in fields.enumerated() {
                if i > 0 { out.append(delimiter) }
                out.append(contentsOf: field(f, delimiter: delimiter))
            }
        }
        out.append(contentsOf: terminator)
        return out
    }
}
