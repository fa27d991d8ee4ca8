import Foundation

extension JobRecord {
    /// A new PENDING record for a claimed request (not saved): deadlines from its received time,
    /// its subject and identifiers as keyed pseudonyms only.
    static func claimed(
        jobID: String, request: DSARRequest, dropTime: Date, note: String, signer: String? = nil, forceDryRun: Bool,
        pseudonymizer: Pseudonymizer
    ) -> JobRecord {
        let now = Date()
        let received = request.receivedAt ?? dropTime
        let deadline = Deadline.initial(receivedAt: received, regulation: request.regulation)
        var rec = JobRecord(
            jobID: jobID, requestID: request.requestID, action: request.action, regulation: request.regulation,
            dryRun: request.dryRun || forceDryRun, status: .pending, receivedAt: Timestamp.format(received),
            claimedAt: Timestamp.format(now), initialDeadline: Timestamp.format(deadline),
            deadline: Timestamp.format(deadline),
            subject: pseudonymizer.subjectPseudonym(request.identifiers),
            identifiers: request.identifiers.map {
                JobRecord.IdentifierRef(type: $0.type, pseudonym: pseudonymizer.pseudonym($0), provenance: "request")
            })
        rec.signer = signer
        rec.language = request.language
        rec.note("claimed", note, now: now)
        return rec
    }
}
