import Foundation
import Logging

/// Replaces a set of identifier values in free text with `<type>`: case-insensitively (ASCII), also
/// in their URL-encoded forms (`alice%40example.com`, every reserved byte as `%XX`). A value of
/// digits only (a user id) is replaced wherever it is not part of a longer number (`user42` and
/// `id=42` are scrubbed, `1042` is not); one of letters and digits only, wherever it is not part of a
/// longer run of letters and digits. Any other value is replaced wherever it occurs.
///
/// Built once for many texts: one pass over each text's bytes, whatever the number of identifiers.
package struct IdentifierScrubber: Sendable {
    struct Pattern: Sendable {
        var bytes: [UInt8]
        var replacement: [UInt8]
        /// Bytes that must not touch the match on either side (none, digits, or letters and digits).
        var boundary: Boundary
    }

    enum Boundary: Sendable { case none, digits, word }

    /// Patterns by their first two (lower-cased) bytes, longest first.
    private var byPrefix: [UInt16: [Pattern]] = [:]
    /// Patterns of a single byte (longest-first order is trivial).
    private var single: [UInt8: Pattern] = [:]

    /// True when there is nothing to replace.
    package var isEmpty: Bool { byPrefix.isEmpty && single.isEmpty }

    /// A scrubber for these identifiers (empty values are skipped).
    package init<S: Sequence>(_ identifiers: S) where S.Element == Identifier {
        var seen = Set<[UInt8]>()
        for id in identifiers where !id.value.isEmpty {
            let replacement = Array("<\(id.type)>".utf8)
            var forms = [Array(id.value.utf8)]
            let encoded = IdentifierScrubber.percentEncoded(Array(id.value.utf8))
            if encoded != forms[0] { forms.append(encoded) }
            if id.value.contains("@") { forms.append(Array(id.value.replacingOccurrences(of: "@", with: "%40").utf8)) }
            for f in forms {
                let lower = f.map(IdentifierScrubber.lower)
                guard seen.insert(lower).inserted else { continue }
                let boundary: Boundary =
                    lower.allSatisfy(IdentifierScrubber.isDigit)
                    ? .digits : lower.allSatisfy(IdentifierScrubber.isWordByte) ? .word : .none
                let p = Pattern(bytes: lower, replacement: replacement, boundary: boundary)
                if lower.count == 1 {
                    single[lower[0]] = p
                } else {
                    byPrefix[UInt16(lower[0]) << 8 | UInt16(lower[1]), default: []].append(p)
                }
            }
        }
        for k in byPrefix.keys { byPrefix[k]!.sort { $0.bytes.count > $1.bytes.count } }
    }

    /// The text with every occurrence of the identifiers replaced.
    package func scrub(_ text: String) -> String {
        guard !isEmpty else { return text }
        let b = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        var changed = false
        while i < b.count {
            if let p = match(b, at: i) {
                out.append(contentsOf: p.replacement)
                i += p.bytes.count
                changed = true
            } else {
                out.append(b[i])
                i += 1
            }
        }
        return changed ? String(decoding: out, as: UTF8.self) : text
    }

    private func match(_ b: [UInt8], at i: Int) -> Pattern? {
        let c0 = IdentifierScrubber.lower(b[i])
        if i + 1 < b.count, let list = byPrefix[UInt16(c0) << 8 | UInt16(IdentifierScrubber.lower(b[i + 1]))] {
            for p in list where i + p.bytes.count <= b.count && fits(p, b, at: i) {
                var k = 2
                while k < p.bytes.count && IdentifierScrubber.lower(b[i + k]) == p.bytes[k] { k += 1 }
                if k == p.bytes.count { return p }
            }
        }
        if let p = single[c0], fits(p, b, at: i) { return p }
        return nil
    }

    /// A number must not touch a digit, a word not a letter or digit, on either side.
    private func fits(_ p: Pattern, _ b: [UInt8], at i: Int) -> Bool {
        let touches: (UInt8) -> Bool
        switch p.boundary {
        case .none: return true
        case .digits: touches = IdentifierScrubber.isDigit
        case .word: touches = IdentifierScrubber.isWordByte
        }
        if i > 0 && touches(b[i - 1]) { return false }
        let end = i + p.bytes.count
        if end < b.count && touches(b[end]) { return false }
        return true
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    static func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c + 0x20 : c }

    static func isWordByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
    }

    /// Every byte outside `A-Za-z0-9-._~` as `%XX` (upper-case hex, as browsers and curl write it).
    static func percentEncoded(_ bytes: [UInt8]) -> [UInt8] {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for c in bytes {
            if isWordByte(c) || c == 0x2D || c == 0x2E || c == 0x5F || c == 0x7E {
                out.append(c)
            } else {
                out += [0x25, hex[Int(c >> 4)], hex[Int(c & 0xF)]]
            }
        }
        return out
    }
}

/// The identifiers whose values must not reach the log: those of the batch in hand. Shared by every
/// copy of the processor's logger (set at the start of a batch, cleared at its end).
package final class LogScrubber: @unchecked Sendable {
    private let lock = NSLock()
    private var current = IdentifierScrubber([])

    /// An empty scrubber.
    package init() {}

    /// Replaces the identifiers scrubbed from log lines.
    package func set<S: Sequence>(_ identifiers: S) where S.Element == Identifier {
        let s = IdentifierScrubber(identifiers)
        lock.lock()
        current = s
        lock.unlock()
    }

    /// Scrubs nothing from now on.
    package func clear() { set([]) }

    /// The scrubber in effect now.
    package var scrubber: IdentifierScrubber {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// `logger` with every message and metadata value passed through this scrubber first.
    package func wrap(_ logger: Logger) -> Logger {
        let inner = logger.handler
        var l = Logger(label: logger.label) { _ in ScrubbingLogHandler(inner: inner, scrubber: self) }
        l.logLevel = logger.logLevel
        return l
    }
}

/// A log handler that scrubs the batch's identifiers from the message and every metadata value
/// (except dsar's own job ids) before handing the event on.
package struct ScrubbingLogHandler: LogHandler {
    var inner: any LogHandler
    let scrubber: LogScrubber
    /// Metadata dsar generates itself (job ids, counts), never scrubbed.
    static let ownKeys: Set<String> = [
        "job", "jobs", "attempt", "round", "connectors", "seq", "retry_for_s", "records", "bytes",
    ]

    /// Wraps `inner`.
    package init(inner: any LogHandler, scrubber: LogScrubber) {
        self.inner = inner
        self.scrubber = scrubber
    }

    /// The wrapped handler's metadata.
    package var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    /// The wrapped handler's level.
    package var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    /// One metadata value of the wrapped handler.
    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    /// Scrubs and forwards.
    package func log(event: LogEvent) {
        let s = scrubber.scrubber
        guard !s.isEmpty else { return inner.log(event: event) }
        var e = event
        e.message = Logger.Message(stringLiteral: s.scrub("\(event.message)"))
        if let m = event.metadata {
            var out: Logger.Metadata = [:]
            for (k, v) in m { out[k] = ScrubbingLogHandler.ownKeys.contains(k) ? v : .string(s.scrub("\(v)")) }
            e.metadata = out
        }
        inner.log(event: e)
    }
}
