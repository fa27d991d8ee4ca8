import ArgumentParser
import DSARCore
import Foundation

extension Dsar {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "List jobs with their deadlines (overdue marked), or show one job in detail.",
            discussion: """
                A job is open until `dsar close` records that the person was answered (or withdrew, or was \
                refused): open jobs count towards overdue and due soon, whatever their status. Times are \
                taken from $DSAR_NOW when set (a testing aid, e.g. DSAR_NOW=2027-01-10T00:00:00Z).
                """)

        @OptionGroup var options: SpoolOptions

        @Argument(help: "A job to show in detail: its job id, request id or a unique job-id prefix.") var job: String?

        @Flag(help: "Print JSON (job records) instead of a table.") var json = false

        func run() async throws {
            try await Exit.guarding {
                let layout = options.layout
                try SpoolSession.requireExisting(layout)
                let store = JobStore(layout: layout)
                if let job {
                    let r = try store.load(try store.resolve(job))
                    if json {
                        print(try JobJSON.record(r))
                    } else {
                        printDetail(r)
                    }
                    return
                }
                let records = try store.all { Exit.printError($0.message) }
                if json {
                    print(try JobJSON.records(records))
                    return
                }
                printTable(records, layout: layout)
            }
        }

        /// What the DAYS LEFT column says of an open job: days left, or how long it is overdue.
        static func daysLeft(_ r: JobRecord, now: Date) -> String {
            guard r.isOpen else { return "-" }
            let d = Deadline.daysLeft(r.deadlineDate, now: now)
            return r.isOverdue(now: now) ? "OVERDUE (\(Deadline.daysOverdue(r.deadlineDate, now: now))d)" : "\(d)"
        }

        func printTable(_ records: [JobRecord], layout: SpoolLayout) {
            let now = DSARClock.now()
            let soonDays = (try? SpoolConfig.load(layout))?.dueSoonDays ?? SpoolConfig().dueSoonDays
            var rows: [[String]] = [
                ["JOB", "REQUEST", "ACTION", "STATUS", "CASE", "RECEIVED", "DEADLINE", "DAYS LEFT"]
            ]
            for r in records {
                rows.append([
                    r.jobID, r.requestID ?? "-", r.action.rawValue + (r.dryRun ? " (dry)" : ""), r.status.rawValue,
                    r.closure.map { "closed (\($0.reason.rawValue))" } ?? "open",
                    String(r.receivedAt.prefix(10)), String(r.deadline.prefix(10)), Status.daysLeft(r, now: now),
                ])
            }
            let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
            for row in rows {
                print(
                    row.enumerated().map { $0.element.padded(widths[$0.offset]) }.joined(separator: "  ")
                        .trimmingCharacters(in: .whitespaces))
            }
            let count = { (d: String) in ((try? FileSystem.list(d)) ?? []).filter { !$0.hasPrefix(".") }.count }
            let open = records.filter(\.isOpen).count
            let overdue = records.filter { $0.isOverdue(now: now) }.count
            let soon = records.filter { $0.isDueSoon(days: soonDays, now: now) }.count
            print(
                "\n\(records.count) jobs, \(open) open, \(overdue) overdue, \(soon) due soon; inbox: \(count(layout.inbox)) entries, rejected: \(count(layout.rejected) / 2), failed requests kept: \(failedRequests(layout)) (`dsar retry JOB` runs one again)"
                    + (count(layout.notify) > 0
                        ? ", notifications waiting for a retry: \(count(layout.notify)) (notify/)" : ""))
        }

        /// Requests kept in `failed/` (not their signatures, reasons or identity sets).
        func failedRequests(_ layout: SpoolLayout) -> Int {
            ((try? FileSystem.list(layout.failed)) ?? []).filter {
                !$0.hasPrefix(".") && $0.hasSuffix(".json") && !IdentityClosure.isIdentityFile($0)
            }.count
        }

        func printDetail(_ r: JobRecord) {
            let now = DSARClock.now()
            print("job:        \(r.jobID)")
            print("request:    \(r.requestID ?? "-")")
            print("action:     \(r.action.rawValue)\(r.dryRun ? " (dry run)" : "")")
            print("regulation: \(r.regulation.rawValue)")
            print("status:     \(r.status.rawValue)\(r.error.map { " — \($0)" } ?? "")")
            if r.attempts > 0 {
                print(
                    "attempts:   \(r.attempts)\(r.status == .pending ? " (the next run is attempt \(r.attempts + 1))" : "")"
                )
            }
            print("subject:    \(r.subject)")
            print("received:   \(r.receivedAt)")
            var dl = "deadline:   \(r.deadline)"
            if r.isOpen {
                let d = Deadline.daysLeft(r.deadlineDate, now: now)
                dl +=
                    r.isOverdue(now: now)
                    ? "  OVERDUE by \(Deadline.daysOverdue(r.deadlineDate, now: now)) days" : "  (\(d) days left)"
            }
            print(dl)
            if let c = r.closure {
                let late = Timestamp.parse(c.at).map { $0 > r.deadlineDate } ?? false
                print("case:       closed at \(c.at) (\(c.reason.rawValue))\(late ? ", after the deadline" : "")")
                if let note = c.note { print("  note: \(note)") }
            } else {
                print("case:       open (`dsar close \(r.jobID) --reason answered` once the person has the answer)")
            }
            for e in r.extensions { print("  extended +\(e.days)d at \(e.at): \(e.reason)") }
            print("identifiers:")
            for i in r.identifiers { print("  \(i.type.padded(10)) \(i.pseudonym.prefix(16))…  (\(i.provenance))") }
            if !r.connectors.isEmpty {
                print("connectors:")
                for c in r.connectors {
                    print(
                        "  \(c.name.padded(16)) \(c.status.padded(7)) \(c.records) records\(c.error.map { " — \($0)" } ?? "")"
                    )
                }
            }
            if let o = r.outbox { print("outbox:     \(o)") }
        }
    }

    struct Events: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "events",
            abstract: "Show a job's history as a timeline.")

        @OptionGroup var options: SpoolOptions
        @Argument(help: "The job: its job id, request id or a unique job-id prefix.") var job: String
        @Flag(help: "Print JSON lines.") var json = false

        func run() async throws {
            try await Exit.guarding {
                try SpoolSession.requireExisting(options.layout)
                let store = JobStore(layout: options.layout)
                let r = try store.load(try store.resolve(job))
                let journal = try Journal(layout: options.layout, signer: nil)
                for (segment, line, e) in try journal.entries() where e.jobID == r.jobID {
                    if json {
                        print(String(decoding: e.line, as: UTF8.self))
                    } else {
                        var details = ""
                        if case .object(let m) = e.details {
                            // In the order the event type defines its fields (unknown ones last).
                            let order = AuditEventType(rawValue: e.type)?.fields.map(\.name) ?? []
                            let sorted = m.sorted {
                                (order.firstIndex(of: $0.key) ?? order.count)
                                    < (order.firstIndex(of: $1.key) ?? order.count)
                            }
                            details = sorted.map { "\($0.key)=\(Events.flat($0.value))" }.joined(separator: " ")
                        }
                        print("\(e.time)  #\(e.seq)  \(e.type.padded(20)) \(details)  [\(segment):\(line)]")
                    }
                }
            }
        }

        static func flat(_ v: JSONValue) -> String {
            switch v {
            case .string(let s): return s.contains(" ") ? "\"\(s)\"" : s
            case .number(let n): return n
            case .bool(let b): return String(b)
            case .null: return "null"
            case .array(let a): return "[" + a.map(flat).joined(separator: ",") + "]"
            case .object: return JSONWriter().string(v)
            }
        }
    }

    struct Extend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "extend",
            abstract: "Extend a job's deadline within the legal maximum (GDPR +2 months, CCPA +45 days).")

        @OptionGroup var options: SpoolOptions
        @Argument(help: "The job id.") var job: String
        @Option(help: "Days to add.") var days: Int
        @Option(help: "Why (recorded; e.g. \"complex request, subject informed on 2026-11-25\").") var reason: String

        func validate() throws {
            if days < 1 { throw ValidationError("--days must be at least 1") }
            if reason.trimmingCharacters(in: .whitespaces).isEmpty {
                throw ValidationError("--reason must not be empty")
            }
        }

        func run() async throws {
            try await Exit.guarding {
                try SpoolSession.requireExisting(options.layout)
                let r = try JobStore(layout: options.layout).extend(job, days: days, reason: reason)
                try Journal(layout: options.layout, signer: nil).append(
                    AuditEvent.deadlineExtended(
                        job: r.jobID, subject: r.subject, days: days, deadline: r.deadline, reason: reason))
                print("job \(r.jobID): deadline now \(r.deadline)")
            }
        }
    }
}
