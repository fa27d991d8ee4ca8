import Foundation

/// The one source of "now" for the case lifecycle: deadlines, overdue and due-soon checks, closing a
/// job, `dsar status`, the metrics' case gauges and notification summaries.
///
/// `DSAR_NOW=2027-01-10T00:00:00Z` (RFC 3339) freezes it at that instant: a testing aid, so that a
/// test can see a job become due soon or overdue without waiting a month. Timers, settle times and
/// durations keep the real clock. An invalid value is an error at start (``validate()``), never
/// silently the real time.
package enum DSARClock {
    /// The environment variable that freezes the clock.
    package static let variable = "DSAR_NOW"

    /// `DSAR_NOW` when set (and valid), else the real time.
    package static func now() -> Date {
        ((try? override()) ?? nil) ?? Date()
    }

    /// The frozen instant from `DSAR_NOW` (nil: unset or empty); throws when it is not RFC 3339.
    package static func override(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Date?
    {
        guard let raw = environment[variable], !raw.isEmpty else { return nil }
        guard let d = Timestamp.parse(raw) else {
            throw DSARError(
                .usage,
                "\(variable)=\"\(raw)\" is not an RFC 3339 time; expected e.g. \(variable)=2027-01-10T00:00:00Z (a testing aid that freezes dsar's clock), or unset it"
            )
        }
        return d
    }

    /// Throws the error of an invalid `DSAR_NOW` (called once when the command starts).
    package static func validate() throws { _ = try override() }
}
