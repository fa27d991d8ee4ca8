import Foundation

/// One `notify:` entry of `config.yaml`: a command run with a job summary (JSON, no personal data)
/// on stdin when a job ends, becomes due soon or overdue, or when intake rejects a drop.
///
/// ```yaml
/// notify:
///   - name: privacy-mail
///     on: [completed, failed, partial, overdue]   # default: these four; also due_soon, rejected
///     timeout_seconds: 30                         # default 30
///     command: /etc/dsar/notify-mail.sh           # a string runs with /bin/sh -c; a list is argv
/// ```
package struct NotifierConfig: Sendable, Equatable {
    /// What a notification is about.
    package enum Event: String, Sendable, CaseIterable, Codable {
        case completed, failed, partial, overdue
        /// An open job's deadline is at most `due_soon_days` away (once per job).
        case dueSoon = "due_soon"
        /// Intake refused a drop (no job exists; the summary names the drop by its pseudonym).
        case rejected

        /// What a notifier hears without `on:` (the events that existed before due_soon and rejected).
        package static let defaults: Set<Event> = [.completed, .failed, .partial, .overdue]

        /// The name in summaries, `DSAR_EVENT` and the journal: `job.<event>`, or `request.rejected`.
        package var qualified: String { self == .rejected ? "request.rejected" : "job." + rawValue }

        /// The event that a job ending with `status` raises.
        package init?(status: JobStatus) {
            switch status {
            case .completed: self = .completed
            case .failed: self = .failed
            case .partial: self = .partial
            case .pending, .running: return nil
            }
        }
    }

    /// Unique name (used in queue file names and the journal).
    package var name: String
    /// argv of the command.
    package var command: [String]
    /// Events that trigger it.
    package var events: Set<Event>
    /// Seconds the command may run before its process group is killed.
    package var timeoutSeconds: Double

    package init(name: String, command: [String], events: Set<Event> = Event.defaults, timeoutSeconds: Double = 30) {
        self.name = name
        self.command = command
        self.events = events
        self.timeoutSeconds = timeoutSeconds
    }

    /// Every key one `notify:` entry accepts.
    static let keys = ["name", "command", "on", "timeout_seconds"]

    /// Reads the `notify:` list, recording `file:line: key: problem` for anything wrong.
    static func parse(_ y: YAMLMap) -> [NotifierConfig] {
        guard let items = y.maps("notify") else { return [] }
        var out: [NotifierConfig] = []
        var seen = Set<String>()
        for m in items {
            let name = m.string("name", required: true) ?? ""
            if !name.isEmpty {
                let ok = name.utf8.allSatisfy { b in
                    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D
                        || b == 0x5F
                }
                if !ok || name.count > 64 {
                    m.problem("name", "expected 1 to 64 letters, digits, '-' or '_' (it names queue files)")
                } else if !seen.insert(name).inserted {
                    m.problem("name", "\"\(name)\" is used by another notify entry")
                }
            }
            var command: [String] = []
            if m.isScalar("command") {
                if let s = m.string("command"), !s.trimmingCharacters(in: .whitespaces).isEmpty {
                    command = ["/bin/sh", "-c", s]
                }
            } else if let argv = m.strings("command") {
                command = argv
            }
            if command.isEmpty {
                if m.has("command") {
                    m.problem("command", "expected a shell command line or a non-empty list (argv)")
                } else {
                    m.problemHere("\(name.isEmpty ? "notify entry" : name): command is missing")
                }
            }
            var events = Event.defaults
            if let on = m.strings("on") {
                events = []
                for e in on {
                    if let ev = Event(rawValue: e) {
                        events.insert(ev)
                    } else {
                        m.problem(
                            "on",
                            "unknown event \"\(e)\"; expected any of: \(Event.allCases.map(\.rawValue).joined(separator: ", "))"
                        )
                    }
                }
            }
            let timeout = m.seconds("timeout_seconds", range: 1...3600) ?? 30
            m.rejectUnknownKeys(allowed: keys)
            out.append(NotifierConfig(name: name, command: command, events: events, timeoutSeconds: timeout))
        }
        return out
    }
}
