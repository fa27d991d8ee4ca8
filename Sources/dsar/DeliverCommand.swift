import ArgumentParser
import DSARCore
import Foundation

extension Dsar {
    struct Deliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "deliver",
            abstract:
                "Make the data subject's copy of an export: outbox/<job-id>/subject.zip.age, opened with a passphrase.",
            discussion: """
                The copy is the ZIP of the job's bundle.zip.age (checked first against the signed manifest),
                decrypted with --identity (the privacy team's age identity file, mode 0600) and re-encrypted as
                it streams to a new passphrase, never written unencrypted. The passphrase is printed once on
                stdout and kept nowhere: send the file and the passphrase by different channels. The subject
                opens it with `age -d -o subject.zip subject.zip.age` (https://age-encryption.org).

                Refused (exit 64): an erasure job, a dry run, a job not ended or ended FAILED, a case closed
                as withdrawn or refused (and one closed as answered unless --force), and a job
                delivered already unless --force (a new file and passphrase; the old passphrase then opens
                nothing). An outbox entry that is not the job's current publication (an earlier attempt's,
                put back after `dsar retry`) is refused with exit 1. A PARTIAL job is delivered with a WARNING on stderr. The job record lists every
                delivery (`deliveries`) and the journal gets `job.delivered` (file, SHA-256, size; never the
                passphrase). An unknown job exits 66.
                """)

        @OptionGroup var options: SpoolOptions
        @Argument(help: "The job id (see `dsar status`), the request id, or a unique prefix of the job id.") var job:
            String
        @Option(
            name: [.customShort("i"), .long],
            help: ArgumentHelp(
                "An age identity file (as age-keygen writes it) that opens the job's bundle.", valueName: "file"))
        var identity: [String] = []
        @Flag(help: "Deliver again: a new subject.zip.age and passphrase replace the previous ones.") var force = false
        @Flag(help: "Wait for the spool lock instead of exiting when another dsar holds it.") var wait = false

        func validate() throws {
            if identity.isEmpty {
                throw ValidationError(
                    "--identity FILE is required: the age identity file whose key opens the job's bundle.zip.age")
            }
        }

        func run() async throws {
            try await Exit.guarding {
                let layout = options.layout
                try SpoolSession.requireExisting(layout)
                let config = try SpoolConfig.load(layout)
                var ids: [AgeIdentity] = []
                for i in identity { ids += try AgeKeys.identities(fromFile: i) }
                let lock = try SpoolLock.acquire(layout, wait: wait, purpose: "dsar deliver")
                defer { withExtendedLifetime(lock) {} }
                let journal = try Journal(layout: layout, signer: try ManifestSigner.load(layout, config: config))
                _ = try journal.recoverTornTail()
                let store = JobStore(layout: layout)
                let jobID = try store.resolve(job)
                let r = try SubjectDelivery.deliver(
                    jobID: jobID, layout: layout, config: config, identities: ids, force: force, audit: journal)
                // `close_on_deliver: true`: handing the subject their copy answers the case.
                var closed = false
                if config.closeOnDeliver, (try store.load(jobID)).closure == nil {
                    try CaseLifecycle.close(jobID, reason: .answered, note: nil, store: store, audit: journal)
                    closed = true
                }
                if let w = r.warning { FileHandle.standardError.write(Data("WARNING: \(w)\n".utf8)) }
                print(
                    """
                    job \(r.jobID) (\(r.status.rawValue)): the data subject's copy is \(r.path)
                      \(r.delivery.bytes) bytes, SHA-256 \(r.delivery.sha256)\(r.number > 1 ? " (delivery \(r.number): the previous copy and passphrase are void)" : "")

                    passphrase: \(r.passphrase)

                    This is the only time the passphrase is shown; dsar keeps no copy of it. Send the file and the
                    passphrase by different channels (e.g. the file as a download, the passphrase by phone or SMS).
                    The data subject opens the file with age (https://age-encryption.org):

                        age -d -o subject.zip \(SubjectDelivery.fileName)

                    and types the passphrase when asked.
                    """)
                if closed { print("\nThe case is closed as answered (close_on_deliver: true in config.yaml).") }
            }
        }
    }
}
