import ArgumentParser
import DSARCore
import Foundation

extension Dsar {
    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "retry",
            abstract:
                "Run a FAILED or PARTIAL job again at the next `dsar run` (same job id, received_at, deadline, request id).",
            discussion: """
                Moves the job's request (with its signature and identity set) from failed/ back to active/,
                withdraws its previous outbox entry and sets it PENDING. The next run searches with every
                identifier the job has learnt so far (also those whose link an earlier attempt erased).
                A COMPLETED job or a closed case (`dsar close`) cannot be retried (exit 64); an unknown job id
                exits 66.
                """)

        @OptionGroup var options: SpoolOptions
        @Argument(help: "The job id (see `dsar status`).") var job: String
        @Flag(help: "Wait for the spool lock instead of exiting when another dsar holds it.") var wait = false

        func run() async throws {
            try await Exit.guarding {
                let layout = options.layout
                try SpoolSession.requireExisting(layout)
                let config = try SpoolConfig.load(layout)
                let lock = try SpoolLock.acquire(layout, wait: wait, purpose: "dsar retry")
                defer { withExtendedLifetime(lock) {} }
                let journal = try Journal(layout: layout, signer: try ManifestSigner.load(layout, config: config))
                _ = try journal.recoverTornTail()
                let r = try JobRetry.retry(job, layout: layout, audit: journal)
                print(
                    "job \(r.jobID): PENDING again; the next `dsar run` runs attempt \(r.attempts + 1) (deadline \(r.deadline))"
                )
            }
        }
    }
}
