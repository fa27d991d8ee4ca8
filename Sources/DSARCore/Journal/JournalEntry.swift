import Foundation

/// One line of the audit journal: a hash-chained, canonical JSON object.
///
/// `hash` is the SHA-256 (hex) of the canonical encoding (keys sorted, compact) of the entry
/// without its `hash` member; `prev` is the previous entry's `hash` (64 zeros for the first).
public struct JournalEntry: Sendable, Equatable {
    public var seq: Int
    public var time: String
    public var jobID: String?
    public var subject: String?
    public var type: String
    public var details: JSONValue
    public var prev: String
    public var hash: String

    /// The genesis `prev`.
    public static let zeroHash = String(repeating: "0", count: 64)

    func members(includeHash: Bool) -> [JSONMember] {
        var m = JSONValue.members([
            "seq": .int(seq), "time": .string(time),
            "job_id": .str(jobID), "subject": .str(subject),
            "type": .string(type), "details": details,
            "prev": .string(prev),
        ])
        if includeHash { m += JSONValue.members(["hash": .string(hash)]) }
        return m
    }

    /// The hash this entry must have.
    public var computedHash: String {
        var h = StreamingSHA256()
        h.update(JSONWriter(sortKeys: true).encode(.object(members(includeHash: false))))
        return h.hexDigest()
    }

    /// The line as written (canonical JSON, without the newline).
    public var line: [UInt8] { JSONWriter(sortKeys: true).encode(.object(members(includeHash: true))) }

    /// Makes an entry and computes its hash.
    public static func make(seq: Int, time: Date, event: AuditEvent, prev: String) -> JournalEntry {
        var e = JournalEntry(
            seq: seq, time: Timestamp.format(time), jobID: event.jobID, subject: event.subject, type: event.type.rawValue,
            details: .object(event.details), prev: prev, hash: "")
        e.hash = e.computedHash
        return e
    }

    /// Why a line is not a well-formed entry.
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses a line strictly: every member present with the right type, nothing else, canonical form.
    public static func parse(_ line: [UInt8]) throws -> JournalEntry {
        let v: JSONValue
        do { v = try JSONParser.parse(line) } catch { throw ParseError(description: "not JSON (\(error))") }
        guard case .object(let m) = v else { throw ParseError(description: "not a JSON object") }
        let keys = Set(m.map(\.key))
        let expected: Set<String> = ["seq", "time", "job_id", "subject", "type", "details", "prev", "hash"]
        guard keys == expected else {
            throw ParseError(description: "members \(keys.sorted()) instead of \(expected.sorted())")
        }
        guard case .number(let seqText)? = v["seq"], let seq = Int(seqText), case .string(let time)? = v["time"],
            case .string(let type)? = v["type"], let details = v["details"], case .string(let prev)? = v["prev"],
            case .string(let hash)? = v["hash"]
        else { throw ParseError(description: "a member has the wrong type") }
        func optString(_ k: String) throws -> String? {
            switch v[k] {
            case .null?: return nil
            case .string(let s)?: return s
            default: throw ParseError(description: "\(k) must be a string or null")
            }
        }
        let e = JournalEntry(
            seq: seq, time: time, jobID: try optString("job_id"), subject: try optString("subject"), type: type, details: details,
            prev: prev, hash: hash)
        guard e.line == line else { throw ParseError(description: "not in canonical form (re-encoding differs)") }
        return e
    }
}
