import Foundation

/// What of one found record goes into the subject's export (GDPR Art. 15(4)): a record that matched
/// only through free text keeps only the text fields that mention the subject; other people's
/// e-mail addresses, phone numbers and IPs in those fields (and in every log line) are masked.
package enum ExportView {
    package struct Record: Sendable {
        package var fields: [JSONMember]
        package var mention: Bool
        package var masked: Int
    }
    package struct Stats: Sendable, Equatable {
        package var mentions = 0
        package var masked = 0
    }
    /// The exported view of `r` for a subject with identity `subject` (request + derived identifiers).
    package static func view(_ r: FoundRecord, subject: [Identifier]) -> Record {
        // Placeholder (pass-through) until the Art. 15(4) view replaces it.
        Record(fields: r.fields, mention: false, masked: 0)
    }
    /// Totals over one connector's findings for the subject.
    package static func stats(_ o: ConnectorOutcome, subject: [Identifier]) -> Stats {
        Stats()
    }
}
