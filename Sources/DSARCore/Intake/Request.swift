import Foundation

/// What the data subject asks for.
package enum RequestAction: String, Sendable, Codable, CaseIterable {
    /// GDPR Art. 15 / CCPA right to know: gather and deliver the data.
    case export
    /// GDPR Art. 17 / CCPA right to delete: erase or redact the data.
    case delete
}

/// The law the request is made under; it decides the response deadline.
package enum Regulation: String, Sendable, Codable, CaseIterable {
    /// EU/UK GDPR: one calendar month, extendable by two more.
    case gdpr
    /// California CCPA/CPRA: 45 days, extendable by 45 more.
    case ccpa
}

/// One identifier of a data subject, normalised for its type.
package struct Identifier: Sendable, Hashable, Codable, Comparable {
    /// The identifier type: `email`, `user_id`, `phone`, `ip`, or a custom name.
    package var type: String
    /// The normalised value (emails lower-cased, phones as `+digits`, IPs canonical).
    package var value: String

    package init(type: String, value: String) {
        self.type = type
        self.value = value
    }

    package static func < (a: Identifier, b: Identifier) -> Bool {
        (a.type, a.value) < (b.type, b.value)
    }
}

/// A validated data-subject request, as read from a drop in the inbox.
package struct DSARRequest: Sendable, Equatable {
    /// The requester's reference (ticket number); free text, never used as a file name.
    package var requestID: String?
    package var action: RequestAction
    package var regulation: Regulation
    /// Every identifier of the subject, normalised, sorted, without duplicates.
    package var identifiers: [Identifier]
    /// When the request was received by the organisation, if the requester said so.
    package var receivedAt: Date?
    /// Report only: change nothing.
    package var dryRun: Bool
    /// The language of the subject report (`"language": "de"`); nil: the spool's default.
    package var language: String?

    package init(
        requestID: String?, action: RequestAction, regulation: Regulation, identifiers: [Identifier],
        receivedAt: Date?, dryRun: Bool = false, language: String? = nil
    ) {
        self.language = language
        self.requestID = requestID
        self.action = action
        self.regulation = regulation
        self.identifiers = identifiers
        self.receivedAt = receivedAt
        self.dryRun = dryRun
    }

    /// The request in its canonical JSON shape (what `dsar submit` writes).
    package func json() -> JSONValue {
        var subject: [JSONMember] = []
        var byType: [(String, [String])] = []
        for id in identifiers {
            if let k = byType.firstIndex(where: { $0.0 == id.type }) {
                byType[k].1.append(id.value)
            } else {
                byType.append((id.type, [id.value]))
            }
        }
        for (t, vs) in byType {
            subject.append(JSONMember(key: t, value: vs.count == 1 ? .string(vs[0]) : .array(vs.map { .string($0) })))
        }
        return .obj(omittingNil: [
            "request_id": requestID.map { .string($0) }, "action": .string(action.rawValue),
            "subject": .object(subject),
            "received_at": receivedAt.map { .string(Timestamp.format($0)) }, "regulation": .string(regulation.rawValue),
            "dry_run": dryRun ? .bool(true) : nil, "language": language.map { .string($0) },
        ])
    }
}
