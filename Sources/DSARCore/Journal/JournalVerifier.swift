import Foundation

/// `dsar audit verify`: walks every segment and checks every hash link, sequence number and
/// checkpoint signature, that `HEAD` and each given manifest's journal head are in the chain.
public enum JournalVerifier {
    /// The first problem found: where and what.
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public var segment: String
        public var line: Int
        public var message: String
        public var description: String { "journal/\(segment):\(line): \(message)" }
    }

    /// What a successful walk saw.
    public struct Summary: Sendable, CustomStringConvertible {
        public var entries = 0
        public var segments = 0
        public var checkpoints = 0
        public var recovered = 0
        public var first: String?
        public var last: String?
        public var manifests = 0
        public var description: String {
            var s = "OK: \(entries) entries in \(segments) segment\(segments == 1 ? "" : "s"), \(checkpoints) signed checkpoint\(checkpoints == 1 ? "" : "s")"
            if let first, let last { s += ", \(first) … \(last)" }
            if recovered > 0 { s += "; \(recovered) torn tail\(recovered == 1 ? "" : "s") recovered after a crash (kept in *.torn)" }
            if manifests > 0 { s += "; \(manifests) manifest head\(manifests == 1 ? "" : "s") found in the chain" }
            return s
        }
    }

    /// Verifies the journal in `dir`. `isTrusted(keyBlob, principal)` decides whether a checkpoint
    /// signer is acceptable (nil reason = yes).
    public static func verify(
        dir: String, manifests: [String] = [], isTrusted: (_ keyBlob: [UInt8], _ principal: String) -> String?
    ) throws -> Summary {
        let segments = try FileSystem.list(dir).filter { $0.hasSuffix(".jsonl") && !$0.hasPrefix(".") && $0.first?.isNumber == true }
        var summary = Summary()
        summary.segments = segments.count
        var hashes: [Int: String] = [:]
        var prevHash = JournalEntry.zeroHash
        var expectedSeq = 1
        var lastLocation = ("-", 0)
        for name in segments {
            let data = try FileSystem.readFile(dir + "/" + name)
            var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
            let endsWithNewline = data.last == 0x0A || data.isEmpty
            if endsWithNewline { lines.removeLast() }
            for (k, raw) in lines.enumerated() {
                let lineNo = k + 1
                func fail(_ m: String) -> Problem { Problem(segment: name, line: lineNo, message: m) }
                if k == lines.count - 1 && !endsWithNewline {
                    throw fail("torn last line (a crash interrupted an append, \(raw.count) bytes); the next dsar run or watch moves it aside")
                }
                let e: JournalEntry
                do { e = try JournalEntry.parse(Array(raw)) } catch {
                    throw fail("malformed entry: \(error) — the line was altered")
                }
                if e.hash != e.computedHash { throw fail("hash mismatch: the entry (seq \(e.seq), \(e.type)) was altered") }
                if e.seq != expectedSeq {
                    let why = e.seq > expectedSeq ? "entries \(expectedSeq)…\(e.seq - 1) are missing (deleted)" : "seq \(e.seq) repeats or goes backwards (a line was inserted or moved)"
                    throw fail("sequence \(e.seq), expected \(expectedSeq): \(why)")
                }
                if e.prev != prevHash {
                    throw fail("broken link: prev does not match the hash of the entry before (the entry before was deleted, inserted, moved or altered)")
                }
                if e.type == "checkpoint" {
                    guard case .number(let sText)? = e.details["signed_seq"], let signedSeq = Int(sText),
                        case .string(let signedHash)? = e.details["signed_hash"], case .string(let sig)? = e.details["signature"]
                    else { throw fail("checkpoint without signed_seq, signed_hash and signature") }
                    guard hashes[signedSeq] == signedHash else {
                        throw fail("checkpoint signs seq \(signedSeq) with a hash that is not the chain's")
                    }
                    let blob: [UInt8]
                    do {
                        blob = try SSHSig.verify(armored: sig, message: Journal.checkpointMessage(seq: signedSeq, hash: signedHash), namespace: Journal.namespace)
                    } catch {
                        throw fail("checkpoint signature INVALID: \(error)")
                    }
                    var principal = ""
                    if case .string(let p)? = e.details["principal"] { principal = p }
                    if let why = isTrusted(blob, principal) { throw fail("checkpoint signer not trusted: \(why)") }
                    summary.checkpoints += 1
                }
                if e.type == "journal.recovered" { summary.recovered += 1 }
                hashes[e.seq] = e.hash
                prevHash = e.hash
                expectedSeq += 1
                summary.entries += 1
                if summary.first == nil { summary.first = e.time }
                summary.last = e.time
                lastLocation = (name, lineNo)
            }
        }
        // HEAD: the journal must reach at least as far as the last recorded append.
        if let headData = try? FileSystem.readFile(dir + "/HEAD") {
            let parts = String(decoding: headData, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
            if parts.count == 2, let seq = Int(parts[0]) {
                if hashes[seq] != String(parts[1]) {
                    throw Problem(
                        segment: lastLocation.0, line: lastLocation.1,
                        message: hashes[seq] == nil
                            ? "the journal ends at seq \(expectedSeq - 1) but HEAD records seq \(seq): entries after this line were truncated"
                            : "HEAD records a different hash for seq \(seq): the chain was rewritten")
                }
            }
        }
        for m in manifests {
            let v = try JSONParser.parse(try FileSystem.readFile(m, limit: 64 << 20))
            guard case .number(let sText)? = v["journal_head"]?["seq"], let seq = Int(sText), case .string(let h)? = v["journal_head"]?["hash"] else {
                throw Problem(segment: "-", line: 0, message: "\(m) has no journal_head")
            }
            guard let have = hashes[seq] else {
                throw Problem(
                    segment: lastLocation.0, line: lastLocation.1,
                    message: "\(m) was sealed under journal seq \(seq), but the journal ends at seq \(expectedSeq - 1): it was truncated after this line")
            }
            guard have == h else {
                throw Problem(segment: "-", line: 0, message: "\(m) was sealed under seq \(seq) with hash \(h), but the chain has \(have) there")
            }
            summary.manifests += 1
        }
        return summary
    }
}
