import Foundation
import Logging

/// The `witness:` command of `config.yaml`: it receives every signed journal checkpoint, to keep
/// a copy outside the spool (syslog, a WORM bucket, another host).
package struct WitnessConfig: Sendable, Equatable {
    /// argv of the command (a string in `config.yaml` runs with `/bin/sh -c`).
    package var command: [String]
    /// Seconds the command may run before its process group is killed (`witness_timeout_seconds`).
    package var timeoutSeconds: Double

    /// A witness running `command` (argv) with `timeoutSeconds` to finish.
    package init(command: [String], timeoutSeconds: Double = 30) {
        self.command = command
        self.timeoutSeconds = timeoutSeconds
    }

    /// Reads `witness:` (string → `/bin/sh -c`, list → argv) and `witness_timeout_seconds`.
    static func parse(_ y: YAMLMap) -> WitnessConfig? {
        guard y.has("witness") else { return nil }
        var command: [String] = []
        if y.isScalar("witness") {
            if let s = y.string("witness"), !s.trimmingCharacters(in: .whitespaces).isEmpty {
                command = ["/bin/sh", "-c", s]
            }
        } else if let argv = y.strings("witness") {
            command = argv
        }
        let timeout = y.seconds("witness_timeout_seconds", range: 1...3600) ?? 30
        guard !command.isEmpty else {
            y.problem(
                "witness",
                "expected a shell command line or a non-empty list (argv) that stores checkpoints outside the spool")
            return nil
        }
        return WitnessConfig(command: command, timeoutSeconds: timeout)
    }
}

/// The witness file format: what a witness receives on stdin, and what `dsar audit verify --witness`
/// reads — one record per checkpoint, concatenated in the order received:
///
///     dsar-journal checkpoint
///     seq: <seq>
///     hash: <64 hex digits>
///     -----BEGIN SSH SIGNATURE-----
///     <base64, 70 columns>
///     -----END SSH SIGNATURE-----
///
/// The first three lines are exactly the signed message (`checkpoints/<seq>.txt`), the armored block
/// exactly its SSHSIG (`.txt.sig`, namespace `dsar-journal`), so an auditor can split a record and
/// run `ssh-keygen -Y verify` on it. Blank lines between records are ignored.
package enum WitnessFile {
    /// One witnessed checkpoint.
    package struct Record: Sendable, Equatable {
        /// The checkpointed journal seq.
        package var seq: Int
        /// The chain hash of that entry, as signed.
        package var hash: String
        /// The armored SSHSIG block (ends with a newline).
        package var signature: String
        /// The record's first line in the file (1-based).
        package var line: Int
        /// The signed message.
        package var message: [UInt8] { Journal.checkpointMessage(seq: seq, hash: hash) }
    }

    /// The bytes sent for one checkpoint: the message, then its signature.
    package static func record(message: [UInt8], signature: String) -> [UInt8] {
        var out = message
        if out.last != 0x0A { out.append(0x0A) }
        out += Array(signature.utf8)
        if out.last != 0x0A { out.append(0x0A) }
        return out
    }

    /// Parses a witness file; a line that does not fit the format throws with `path:line`.
    package static func parse(_ bytes: [UInt8], path: String) throws -> [Record] {
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { raw -> String in
            var l = raw
            if l.last == 0x0D { l = l.dropLast() }
            return String(decoding: l, as: UTF8.self)
        }
        func bad(_ n: Int, _ why: String) -> DSARError {
            DSARError(
                .invalidInput,
                "\(path):\(n + 1): \(why) (expected the witness format: the 3 checkpoint lines, then the SSH SIGNATURE block)",
                path: path)
        }
        var out: [Record] = []
        var i = 0
        while i < lines.count {
            if lines[i].trimmingCharacters(in: .whitespaces).isEmpty {
                i += 1
                continue
            }
            let start = i
            guard lines[i] == "dsar-journal checkpoint" else {
                throw bad(i, "expected \"dsar-journal checkpoint\", found \"\(lines[i].prefix(80))\"")
            }
            guard i + 2 < lines.count, lines[i + 1].hasPrefix("seq: "), let seq = Int(lines[i + 1].dropFirst(5)),
                seq > 0
            else {
                throw bad(i + 1, "expected \"seq: <number>\"")
            }
            let hash = lines[i + 2].hasPrefix("hash: ") ? String(lines[i + 2].dropFirst(6)) : ""
            guard hash.utf8.count == 64,
                hash.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
            else {
                throw bad(i + 2, "expected \"hash: <64 lowercase hex digits>\"")
            }
            i += 3
            guard i < lines.count, lines[i] == SSHSig.begin else {
                throw bad(min(i, lines.count - 1), "expected \(SSHSig.begin)")
            }
            var sig = lines[i] + "\n"
            i += 1
            while i < lines.count && lines[i] != SSHSig.end {
                if lines[i].hasPrefix("-----") || lines[i] == "dsar-journal checkpoint" {
                    throw bad(i, "expected base64 or \(SSHSig.end)")
                }
                sig += lines[i] + "\n"
                i += 1
            }
            guard i < lines.count else {
                throw bad(lines.count - 1, "the signature block of seq \(seq) has no \(SSHSig.end)")
            }
            sig += lines[i] + "\n"
            i += 1
            out.append(Record(seq: seq, hash: hash, signature: sig, line: start + 1))
        }
        return out
    }
}

/// Sends signed checkpoints to the configured witness command.
///
/// `journal/WITNESSED` records the last checkpoint seq the witness accepted. Each delivery sends,
/// oldest first, every `checkpoints/<seq>.txt` after it (so a witness that was down receives what
/// it missed, in order, on the next checkpoint). A failure (exit status, signal, timeout) is logged
/// and journaled as `witness.failed`, stops the pass, and leaves the rest for the next checkpoint;
/// it never changes the journal or a job. Delivery is at least once (a crash after the command's
/// success and before `WITNESSED` is updated sends that checkpoint again).
package struct Witness: Sendable {
    /// The command and its timeout.
    package let config: WitnessConfig
    /// Directory for the subprocess capture files (the spool's `tmp/`).
    package let scratchDir: String
    /// Where failures and deliveries are logged (the caller's logger; the library never bootstraps logging).
    package let logger: Logger

    /// A witness for `config`, capturing output in `scratchDir`, logging to `logger`.
    package init(config: WitnessConfig, scratchDir: String, logger: Logger) {
        self.config = config
        self.scratchDir = scratchDir
        self.logger = logger
    }

    /// What one delivery pass did.
    package struct Report: Sendable {
        /// Checkpoints the witness accepted in this pass.
        package var sent = 0
        /// 1 when the pass stopped at a failure.
        package var failed = 0
        /// Checkpoints still waiting for the witness.
        package var pending = 0
    }

    /// The last checkpoint seq the witness accepted (0 if none).
    package static func delivered(_ journal: Journal) -> Int {
        guard let data = try? FileSystem.readFile(journal.dir + "/WITNESSED", limit: 4096) else { return 0 }
        return Int(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Checkpoint seqs on disk (`checkpoints/<seq>.txt` with its `.sig`), ascending.
    static func checkpointSeqs(_ dir: String) -> [Int] {
        let names = (try? FileSystem.list(dir)) ?? []
        let set = Set(names)
        return names.compactMap { n -> Int? in
            guard n.hasSuffix(".txt"), set.contains(n + ".sig"), let s = Int(n.dropLast(4)), n.first?.isNumber == true
            else { return nil }
            return s
        }.sorted()
    }

    /// Sends every checkpoint the witness has not accepted yet, oldest first; stops at the first failure.
    @discardableResult
    package func deliverPending(_ journal: Journal) async -> Report {
        var report = Report()
        let cdir = journal.dir + "/checkpoints"
        let done = Witness.delivered(journal)
        let pending = Witness.checkpointSeqs(cdir).filter { $0 > done }
        for (k, seq) in pending.enumerated() {
            let base = cdir + String(format: "/%09d.txt", seq)
            var failure: String?
            let started = Date()
            do {
                let message = try FileSystem.readFile(base, limit: 1 << 16)
                let sig = String(decoding: try FileSystem.readFile(base + ".sig", limit: 1 << 16), as: UTF8.self)
                let r = try await Subprocess.run(
                    config.command, stdin: WitnessFile.record(message: message, signature: sig),
                    environment: ["DSAR_CHECKPOINT_SEQ": String(seq), "DSAR_JOURNAL": journal.dir],
                    timeout: config.timeoutSeconds,
                    scratchDir: scratchDir, maxOutputBytes: 1 << 20)
                failure = r.failure(timeout: config.timeoutSeconds)
            } catch {
                failure = "\(error)"
            }
            if let failure {
                report.failed += 1
                report.pending = pending.count - k
                logger.warning(
                    "witness failed; the checkpoint stays pending and is sent again at the next checkpoint",
                    metadata: [
                        "seq": "\(seq)", "pending": "\(report.pending)", "reason": "\(failure)",
                        "command": "\(config.command.first ?? "")",
                    ])
                do {
                    try journal.append(
                        AuditEvent.witnessFailed(
                            signedSeq: seq, reason: failure, pending: report.pending,
                            durationMs: Int(Date().timeIntervalSince(started) * 1000), retry: "next checkpoint"))
                } catch {
                    logger.error(
                        "cannot journal the witness failure", metadata: ["seq": "\(seq)", "error": "\(error)"])
                }
                return report
            }
            do {
                try FileSystem.writeAtomically(journal.dir + "/WITNESSED", Array("\(seq)\n".utf8), mode: 0o600)
            } catch {
                logger.error(
                    "cannot record the witnessed checkpoint (it will be sent again)",
                    metadata: ["seq": "\(seq)", "error": "\(error)"])
            }
            report.sent += 1
            logger.info("checkpoint witnessed", metadata: ["seq": "\(seq)"])
        }
        return report
    }
}
