import Foundation

/// One line of the audit journal: a hash-chained, canonical JSON object.
///
/// `hash` is the SHA-256 (hex) of the canonical encoding (keys sorted, compact) of the entry
/// without its `hash` member; `prev` is the previous entry's `hash` (64 zeros for the first).
package struct JournalEntry: Sendable, Equatable {
    package var seq: Int
    package var time: String
    package var jobID: String?
    package var subject: String?
    package var type: String
    package var details: JSONValue
    package var prev: String
    package var hash: String

    /// The genesis `prev`.
    package static let zeroHash = String(repeating: "0", count: 64)

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
    package var computedHash: String {
        var h = StreamingSHA256()
        h.update(JSONWriter(sortKeys: true).encode(.object(members(includeHash: false))))
        return h.hexDigest()
    }

    /// The line as written (canonical JSON, without the newline).
    package var line: [UInt8] { JSONWriter(sortKeys: true).encode(.object(members(includeHash: true))) }

    /// Makes an entry and computes its hash.
    package static func make(seq: Int, time: Date, event: AuditEvent, prev: String) -> JournalEntry {
        var e = JournalEntry(
            seq: seq, time: Timestamp.format(time), jobID: event.jobID, subject: event.subject,
            type: event.type.rawValue,
            details: .object(event.details), prev: prev, hash: "")
        e.hash = e.computedHash
        return e
    }

    /// Why a line is not a well-formed entry.
    package struct ParseError: Error, CustomStringConvertible {
        package var description: String
    }

    /// Parses a line strictly: every member present with the right type, nothing else, canonical form.
    package static func parse(_ line: [UInt8]) throws -> JournalEntry {
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
            seq: seq, time: time, jobID: try optString("job_id"), subject: try optString("subject"), type: type,
            details: details,
            prev: prev, hash: hash)
        guard e.line == line else { throw ParseError(description: "not in canonical form (re-encoding differs)") }
        return e
    }
}
