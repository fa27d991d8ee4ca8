import ArgumentParser
import DSARCore
import Foundation

extension Dsar {
    /// `dsar close JOB --reason answered|withdrawn|refused [--note TEXT]`: ends the case.
    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "close",
            abstract: "Close a case: the person was answered, withdrew the request, or was refused.",
            discussion: """
                A job stays open (it counts towards overdue and due soon, whatever its status) until it is \
                closed. --reason answered needs a job that has ended; withdrawn and refused may close a \
                PENDING job too (it then ends FAILED without running, its request set aside in failed/), or \
                one left RUNNING by a run that crashed. While a dsar run holds the spool lock, close exits 75 \
                (retry when the run ends, or use --wait). A closed case is not retried, and one closed as \
                withdrawn or refused is not delivered. The note is kept in the job record only; the journal \
                (job.closed) records the reason and whether there is a note.
                """)

        @OptionGroup var options: SpoolOptions
        @Argument(help: "The job: its job id, request id or a unique job-id prefix.") var job: String
        @Option(help: "answered, withdrawn or refused.") var reason: String
        @Option(help: "Free text kept in the job record (e.g. \"sent by registered mail 2026-12-03\").")
        var note: String?
        @Flag(help: "Wait for the spool lock instead of exiting when another dsar holds it.") var wait = false

        func validate() throws {
            guard CloseReason(rawValue: reason) != nil else {
                throw ValidationError(
                    "--reason must be one of \(CloseReason.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(reason)\""
                )
            }
        }

        func run() async throws {
            try await Exit.guarding {
                try SpoolSession.requireExisting(options.layout)
                guard let why = CloseReason(rawValue: reason) else { throw DSARError(.usage, "unknown --reason") }
                let store = JobStore(layout: options.layout)
                let id = try store.resolve(job)
                // Under the spool lock: a run must not be starting the job while its case is closed.
                let lock: SpoolLock
                do {
                    lock = try SpoolLock.acquire(options.layout, wait: wait, purpose: "dsar close")
                } catch let e as DSARError where e.code == .locked {
                    let holder =
                        (try? FileSystem.readFile(options.layout.lockFile, limit: 4096)).map {
                            String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                        } ?? "unknown"
                    throw DSARError(
                        .locked,
                        "job \(id) was not closed: a dsar run holds the spool lock \(options.layout.lockFile) (\(holder)); retry when it ends, or use --wait (the case is then closed once the run has finished)",
                        path: options.layout.lockFile, cause: e)
                }
                defer { withExtendedLifetime(lock) {} }
                let r = try CaseLifecycle.close(
                    id, reason: why, note: note, store: store, audit: try Journal(layout: options.layout, signer: nil))
                let late = r.closure.flatMap { Timestamp.parse($0.at) }.map { $0 > r.deadlineDate } ?? false
                print(
                    "job \(r.jobID): closed (\(why.rawValue)) at \(r.closure?.at ?? "?")"
                        + (late ? ", after the deadline \(r.deadline)" : ""))
            }
        }
    }
}
