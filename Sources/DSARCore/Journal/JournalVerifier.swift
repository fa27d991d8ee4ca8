import Foundation

/// `dsar audit verify`: walks every segment and checks every hash link, sequence number and
/// checkpoint signature, that `HEAD` and each given manifest's journal head are in the chain, that
/// every `checkpoints/<seq>.txt(.sig)` matches the chain and is signed by a trusted key, and that
/// every checkpoint of a witness file (kept outside the spool) does too.
package enum JournalVerifier {
    /// The first problem found: where and what.
    package struct Problem: Error, Sendable, CustomStringConvertible {
        package var segment: String
        package var line: Int
        package var message: String
        /// A file outside the journal (a witness file) the problem is in; overrides `segment`.
        package var file: String? = nil
        package var description: String {
            if let file { return "\(file):\(line): \(message)" }
            if line == 0 { return segment == "-" ? "journal: \(message)" : "journal/\(segment): \(message)" }
            return "journal/\(segment):\(line): \(message)"
        }
    }

    /// What a successful walk saw.
    package struct Summary: Sendable, CustomStringConvertible {
        package var entries = 0
        package var segments = 0
        package var checkpoints = 0
        package var recovered = 0
        package var first: String?
        package var last: String?
        package var manifests = 0
        /// `checkpoints/<seq>.txt(.sig)` files checked against the chain.
        package var checkpointFiles = 0
        /// Checkpoints of the witness files found in the chain.
        package var witnessed = 0
        package var description: String {
            var s =
                "OK: \(entries) entries in \(segments) segment\(segments == 1 ? "" : "s"), \(checkpoints) signed checkpoint\(checkpoints == 1 ? "" : "s")"
            if let first, let last { s += ", \(first) … \(last)" }
            if recovered > 0 {
                s += "; \(recovered) torn tail\(recovered == 1 ? "" : "s") recovered after a crash (kept in *.torn)"
            }
            if manifests > 0 { s += "; \(manifests) manifest head\(manifests == 1 ? "" : "s") found in the chain" }
            if witnessed > 0 { s += "; \(witnessed) witnessed checkpoint\(witnessed == 1 ? "" : "s") match the chain" }
            return s
        }
    }

    /// Verifies the journal in `dir`. `witnesses` are witness files (``WitnessFile`` format).
    /// `isTrusted(keyBlob, principal)` decides whether a checkpoint signer is acceptable (nil reason
    /// = yes); for checkpoint files and witness records the principal is the one the chain's
    /// checkpoint entry names (empty when the chain has none for that seq).
    package static func verify(
        dir: String, manifests: [String] = [], witnesses: [String] = [],
        isTrusted: (_ keyBlob: [UInt8], _ principal: String) -> String?
    ) throws -> Summary {
        let segments = try FileSystem.list(dir).filter {
            $0.hasSuffix(".jsonl") && !$0.hasPrefix(".") && $0.first?.isNumber == true
        }
        var summary = Summary()
        summary.segments = segments.count
        var hashes: [Int: String] = [:]
        /// seq → (segment index, line) of every entry, to point at the entry a witness contradicts.
        var locations: [Int: (Int, Int)] = [:]
        /// signed seq → principal of the chain's checkpoint entries.
        var principals: [Int: String] = [:]
        var prevHash = JournalEntry.zeroHash
        var expectedSeq = 1
        var lastLocation = ("-", 0)
        for (segIndex, name) in segments.enumerated() {
            let data = try FileSystem.readFile(dir + "/" + name)
            var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
            let endsWithNewline = data.last == 0x0A || data.isEmpty
            if endsWithNewline { lines.removeLast() }
            for (k, raw) in lines.enumerated() {
                let lineNo = k + 1
                func fail(_ m: String) -> Problem { Problem(segment: name, line: lineNo, message: m) }
                if k == lines.count - 1 && !endsWithNewline {
                    throw fail(
                        "torn last line (a crash interrupted an append, \(raw.count) bytes); the next dsar run or watch moves it aside"
                    )
                }
                let e: JournalEntry
                do { e = try JournalEntry.parse(Array(raw)) } catch {
                    throw fail("malformed entry: \(error) — the line was altered")
                }
                if e.hash != e.computedHash {
                    throw fail("hash mismatch: the entry (seq \(e.seq), \(e.type)) was altered")
                }
                if e.seq != expectedSeq {
                    let why =
                        e.seq > expectedSeq
                        ? "entries \(expectedSeq)…\(e.seq - 1) are missing (deleted)"
                        : "seq \(e.seq) repeats or goes backwards (a line was inserted or moved)"
                    throw fail("sequence \(e.seq), expected \(expectedSeq): \(why)")
                }
                if e.prev != prevHash {
                    throw fail(
                        "broken link: prev does not match the hash of the entry before (the entry before was deleted, inserted, moved or altered)"
                    )
                }
                // Every entry is an event dsar defines, with exactly its fields (AuditEventType).
                guard let type = AuditEventType(rawValue: e.type) else {
                    throw fail("\"\(e.type)\" is not an audit event type dsar writes (seq \(e.seq))")
                }
                if let why = type.problem(with: e.details) { throw fail("seq \(e.seq): \(why)") }
                if type == .checkpoint {
                    guard case .number(let sText)? = e.details["signed_seq"], let signedSeq = Int(sText),
                        case .string(let signedHash)? = e.details["signed_hash"],
                        case .string(let sig)? = e.details["signature"]
                    else { throw fail("checkpoint without signed_seq, signed_hash and signature") }
                    guard hashes[signedSeq] == signedHash else {
                        throw fail("checkpoint signs seq \(signedSeq) with a hash that is not the chain's")
                    }
                    let blob: [UInt8]
                    do {
                        blob = try SSHSig.verify(
                            armored: sig, message: Journal.checkpointMessage(seq: signedSeq, hash: signedHash),
                            namespace: Journal.namespace)
                    } catch {
                        throw fail("checkpoint signature INVALID: \(error)")
                    }
                    var principal = ""
                    if case .string(let p)? = e.details["principal"] { principal = p }
                    if let why = isTrusted(blob, principal) { throw fail("checkpoint signer not trusted: \(why)") }
                    principals[signedSeq] = principal
                    summary.checkpoints += 1
                }
                if type == .journalRecovered { summary.recovered += 1 }
                hashes[e.seq] = e.hash
                locations[e.seq] = (segIndex, lineNo)
                prevHash = e.hash
                expectedSeq += 1
                summary.entries += 1
                if summary.first == nil { summary.first = e.time }
                summary.last = e.time
                lastLocation = (name, lineNo)
            }
        }
        let lastSeq = expectedSeq - 1
        func atEnd(_ m: String) -> Problem { Problem(segment: lastLocation.0, line: lastLocation.1, message: m) }
        // HEAD: the journal must reach at least as far as the last recorded append.
        let headPath = dir + "/HEAD"
        let headExists = FileSystem.exists(headPath)
        if headExists {
            let parts = String(decoding: try FileSystem.readFile(headPath, limit: 4096), as: UTF8.self).split(
                whereSeparator: { $0 == " " || $0 == "\n" })
            guard parts.count == 2, let seq = Int(parts[0]) else {
                throw Problem(
                    segment: "HEAD", line: 0,
                    message:
                        "malformed: expected \"<seq> <hash>\" (dsar never writes anything else there: it was altered)")
            }
            if hashes[seq] != String(parts[1]) {
                throw atEnd(
                    hashes[seq] == nil
                        ? "the journal ends at seq \(lastSeq) but HEAD records seq \(seq): entries after this line were truncated"
                        : "HEAD records a different hash for seq \(seq): the chain was rewritten")
            }
        }
        for m in manifests {
            let v = try JSONParser.parse(try FileSystem.readFile(m, limit: 64 << 20))
            guard case .number(let sText)? = v["journal_head"]?["seq"], let seq = Int(sText),
                case .string(let h)? = v["journal_head"]?["hash"]
            else {
                throw Problem(segment: "-", line: 0, message: "\(m) has no journal_head")
            }
            guard let have = hashes[seq] else {
                throw atEnd(
                    "\(m) was sealed under journal seq \(seq), but the journal ends at seq \(lastSeq): it was truncated after this line"
                )
            }
            guard have == h else {
                throw Problem(
                    segment: "-", line: 0,
                    message: "\(m) was sealed under seq \(seq) with hash \(h), but the chain has \(have) there")
            }
            summary.manifests += 1
        }
        /// The principal to check a checkpoint signature of `seq` for: the chain's, else the latest one.
        let latestPrincipal = principals.max { $0.key < $1.key }?.value ?? ""
        func principal(_ seq: Int) -> String { principals[seq] ?? latestPrincipal }

        // checkpoints/<seq>.txt and .txt.sig: copies of the chain's checkpoints, each must match it.
        let cdir = dir + "/checkpoints"
        let names = FileSystem.exists(cdir) ? try FileSystem.list(cdir) : []
        let present = Set(names)
        var seqs: [(seq: Int, name: String)] = []
        for n in names where n.first?.isNumber == true {
            let stem = n.hasSuffix(".txt") ? n.dropLast(4) : n.hasSuffix(".txt.sig") ? n.dropLast(8) : nil
            guard let stem, stem.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let seq = Int(stem) else { continue }
            // A lone .sig (a crash between writing the signature and its message) is checked on its own.
            if n.hasSuffix(".txt") || !present.contains(String(stem) + ".txt") {
                seqs.append((seq, String(stem) + ".txt"))
            }
        }
        seqs.sort { $0.seq < $1.seq }
        if let beyond = seqs.last, beyond.seq > lastSeq {
            throw atEnd(
                "the journal ends at seq \(lastSeq), but checkpoints/\(beyond.name) is a signed checkpoint of seq \(beyond.seq): "
                    + "entries \(lastSeq + 1)…\(beyond.seq) (at least) were truncated after this line. Compare with your witness "
                    + "(dsar audit verify --witness FILE) and backups; do not run dsar on this spool until you know what happened"
            )
        }
        for (seq, name) in seqs {
            let rel = "checkpoints/" + name
            func bad(_ m: String) -> Problem { Problem(segment: rel, line: 0, message: m) }
            guard let hash = hashes[seq] else { throw bad("names seq \(seq), which is not in the chain") }
            let message = Journal.checkpointMessage(seq: seq, hash: hash)
            if present.contains(name) {
                let text = try FileSystem.readFile(cdir + "/" + name, limit: 1 << 16)
                guard text == message else {
                    throw bad(
                        "does not match the chain: the chain has hash \(hash) at seq \(seq) (the file was edited, or the chain rewritten)"
                    )
                }
                guard present.contains(name + ".sig") else {
                    throw bad(
                        "has no \(name).sig: a checkpoint message without its signature (the signature was deleted)")
                }
            }
            let sig = String(
                decoding: try FileSystem.readFile(cdir + "/" + name + ".sig", limit: 1 << 16), as: UTF8.self)
            let blob: [UInt8]
            do { blob = try SSHSig.verify(armored: sig, message: message, namespace: Journal.namespace) } catch {
                throw Problem(
                    segment: rel + ".sig", line: 0,
                    message: "signature INVALID for seq \(seq) with the chain's hash: \(error)")
            }
            if let why = isTrusted(blob, principal(seq)) {
                throw Problem(segment: rel + ".sig", line: 0, message: "signer not trusted: \(why)")
            }
            summary.checkpointFiles += 1
        }

        // Witness files: checkpoints kept outside the spool, which someone who rewrites the whole spool cannot reach.
        for w in witnesses {
            let records = try WitnessFile.parse(try FileSystem.readFile(w, limit: 256 << 20), path: w)
            guard !records.isEmpty else {
                throw Problem(
                    segment: "-", line: 0, message: "the witness file holds no checkpoint, so it proves nothing",
                    file: w)
            }
            for r in records {
                func bad(_ m: String) -> Problem { Problem(segment: "-", line: r.line, message: m, file: w) }
                let blob: [UInt8]
                do {
                    blob = try SSHSig.verify(armored: r.signature, message: r.message, namespace: Journal.namespace)
                } catch {
                    throw bad("witnessed checkpoint of seq \(r.seq): signature INVALID: \(error)")
                }
                if let why = isTrusted(blob, principal(r.seq)) {
                    throw bad("witnessed checkpoint of seq \(r.seq): signer not trusted: \(why)")
                }
                guard let have = hashes[r.seq] else {
                    throw atEnd(
                        "the journal ends at seq \(lastSeq), but the witness \(w) (line \(r.line)) holds a signed checkpoint of seq \(r.seq): "
                            + "the journal was truncated after this line")
                }
                guard have == r.hash else {
                    let (si, line) = locations[r.seq] ?? (0, 0)
                    throw Problem(
                        segment: segments.isEmpty ? "-" : segments[si], line: line,
                        message:
                            "seq \(r.seq) has hash \(have), but the witness \(w) (line \(r.line)) holds a signed checkpoint of hash "
                            + "\(r.hash) for it: history was rewritten at or before this entry")
                }
                summary.witnessed += 1
            }
        }

        if !headExists && summary.entries > 0 {
            throw Problem(
                segment: "HEAD", line: 0,
                message:
                    "is missing while the journal has \(summary.entries) entries (dsar rewrites it on every append): the journal "
                    + "may have been truncated, with HEAD deleted to hide it. Compare with a witness (dsar audit verify --witness FILE), "
                    + "the manifests sent out (--manifest) and backups of journal/; `dsar events` shows the last entries kept"
            )
        }
        return summary
    }
}
