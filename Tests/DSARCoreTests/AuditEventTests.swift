import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// The journal's vocabulary: each event type's fields are defined once, the factories build events
/// that fit them, and the verifier refuses entries that do not.
final class AuditEventTests: XCTestCase {
    func testTypesAndFieldsAreUniqueAndNamedLikeTheJournal() {
        XCTAssertEqual(Set(AuditEventType.allCases.map(\.rawValue)).count, AuditEventType.allCases.count)
        for t in AuditEventType.allCases {
            let names = t.fields.map(\.name)
            XCTAssertEqual(Set(names).count, names.count, "\(t.rawValue) defines a field twice")
            XCTAssertTrue(t.rawValue.allSatisfy { $0.isLowercase || $0 == "." || $0 == "_" }, t.rawValue)
        }
    }

    func testAProblemNamesTheMissingExtraOrWrongField() {
        let t = AuditEventType.jobFinished
        XCTAssertNil(t.problem(with: .obj(["status": .string("COMPLETED"), "records": .int(3)])))
        XCTAssertEqual(
            t.problem(with: .obj(["status": .string("COMPLETED")])), "job.finished lacks its field \"records\"")
        XCTAssertEqual(
            t.problem(with: .obj(["status": .string("COMPLETED"), "records": .int(3), "email": .string("x")])),
            "job.finished has no field \"email\"")
        XCTAssertEqual(
            t.problem(with: .obj(["status": .string("COMPLETED"), "records": .string("3")])),
            "job.finished field \"records\" must be an integer, not a string")
        // Optional fields may be left out; string-or-null ones must be there.
        XCTAssertNil(AuditEventType.crashRecovered.problem(with: .obj(["was": .string("CLAIMED")])))
        XCTAssertNotNil(AuditEventType.journalRecovered.problem(with: .obj(["torn_bytes": .int(1)])))
        XCTAssertNil(AuditEventType.journalRecovered.problem(with: .obj(["torn_bytes": .int(1), "torn_file": .null])))
    }

    func testEveryFactoryBuildsAnEventThatFitsItsType() throws {
        let request = try RequestParser(defaultRegulation: .gdpr).parse(
            Array(#"{"action": "export", "email": "a@example.com"}"#.utf8))
        var erased = FileErasure(connector: "shop", file: "/d/shop.sql", table: "customers", strategy: .delete)
        erased.deleted = 1
        var kept = FileErasure(connector: "shop", file: "/d/shop.sql", table: "orders", strategy: .retain)
        kept.retained = 2
        let events: [AuditEvent] = [
            .jobClaimed(job: "J", subject: "S", file: "active/J.json"),
            .requestReceived(job: "J", subject: "S", request: request, signer: nil),
            .requestRejected(drop: "drop-1", reason: "bad"),
            .requestRejected(drop: "drop-1", reason: "bad", file: "rejected/x.json"),
            .requestDuplicate(firstJob: "J", drop: "drop-2", reason: "dup"),
            .jobStarted(job: "J", subject: "S", attempt: 1),
            .connectorStarted(job: "J", subject: "S", connector: "c", round: 1),
            .connectorRetried(job: "J", subject: "S", connector: "c", attempts: 2),
            .connectorScanned(
                job: "J", subject: "S", connector: "c", records: 1, bytesScanned: 10, durationMs: 1, attempts: 1,
                round: 1, failure: nil),
            .connectorScanned(
                job: "J", subject: "S", connector: "c", records: 0, bytesScanned: 0, durationMs: 1, attempts: 3,
                round: 1, failure: "no"),
            .connectorEraseFailed(job: "J", subject: "S", connector: "c", reason: "no"),
            .identifierDerived(job: "J", subject: "S", type: "user_id", provenance: "c.customers"),
            .fileErasure(job: "J", subject: "S", erased), .fileErasure(job: "J", subject: "S", kept),
            .erasureVerified(job: "J", subject: "S", connectors: 1, sourceFiles: 2, gaps: 0),
            .sealed(job: "J", subject: "S", action: .export, manifestSHA256: "ab"),
            .sealed(job: "J", subject: "S", action: .delete, manifestSHA256: "ab"),
            .jobPublished(job: "J", subject: "S", outbox: "outbox/J"),
            .jobFinished(job: "J", subject: "S", status: .partial, records: 2),
            .jobOverdue(job: "J", subject: "S", deadline: "2026-12-01T00:00:00Z", status: .running),
            .jobDueSoon(job: "J", subject: "S", deadline: "2026-12-01T00:00:00Z", daysLeft: 3, status: .completed),
            .jobClosed(
                job: "J", subject: "S", reason: .answered, status: .completed, deadline: "2026-12-01T00:00:00Z",
                note: true),
            .jobDelivered(
                job: "J", subject: "S", file: "outbox/J/subject.zip.age", sha256: "ab", bytes: 10, delivery: 1),
            .downloadGranted(
                job: "J", subject: "S", file: "bundle.zip.age", expires: "2026-12-01T01:00:00Z", principal: nil),
            .downloadGranted(
                job: "J", subject: "S", file: "manifest.json", expires: "2026-12-01T01:00:00Z",
                principal: "principal-0123"),
            .jobRetried(job: "J", subject: "S", attempt: 2, was: .partial, outboxWithdrawn: true),
            .deadlineExtended(job: "J", subject: "S", days: 30, deadline: "d", reason: "complex"),
            .crashRecovered(job: "J", subject: "S", was: "RUNNING", crashes: 3, now: .failed),
            .notifySent(job: "J", notifier: "n", event: "job.completed", attempt: 1, durationMs: 3),
            .notifyFailed(job: "J", subject: "S", event: "job.completed", reason: "could not be queued"),
            .notifyAbandoned(job: "J", notifier: "n", event: "job.completed", attempt: 2, reason: "gone"),
            .outboxExpired(job: "J", retentionDays: 30), .journalRecovered(tornBytes: 5, tornFile: nil),
            .checkpoint(signedSeq: 1, signedHash: "h", namespace: "n", principal: "p", signature: "s"),
            .witnessFailed(signedSeq: 1, reason: "r", pending: 1, durationMs: 1, retry: "next checkpoint"),
        ]
        for e in events { XCTAssertNil(e.type.problem(with: .object(e.details)), e.type.rawValue) }
        // Every type has a factory.
        XCTAssertEqual(Set(events.map(\.type)), Set(AuditEventType.allCases))
        XCTAssertEqual(AuditEvent.fileErasure(job: "J", subject: "S", erased).type, .fileErased)
        let retained = AuditEvent.fileErasure(job: "J", subject: "S", kept)
        XCTAssertEqual(retained.type, .fileRetained, "a retained source is journaled as file.retained")
        XCTAssertEqual(retained.details.first { $0.key == "table" }?.value, .string("orders"))
        XCTAssertEqual(retained.details.first { $0.key == "strategy" }?.value, .string("retain"))
        let types = events.map(\.type)
        XCTAssertEqual(types.filter { $0 == .connectorFailed }.count, 2, "a failed scan and a failed erasure")
        XCTAssertFalse(
            events.contains { $0.type == .requestReceived && "\($0.details)".contains("a@example.com") },
            "types, never values")
    }

    /// An entry whose hash chain is intact but whose type or fields are not dsar's is refused.
    func testTheVerifierRefusesAnEventTypeOrFieldsDsarDoesNotDefine() throws {
        for (type, details) in [
            ("job.teleported", JSONValue.obj([:])), ("job.finished", .obj(["status": .string("COMPLETED")])),
        ] {
            let s = try TempSpool()
            try s.initialize()
            let journal = try Journal(layout: s.layout, signer: nil)
            try journal.append(.outboxExpired(job: "J", retentionDays: 30))
            let (segment, _, first) = try XCTUnwrap(try journal.entries().last)
            var forged = JournalEntry.make(
                seq: 2, time: Date(), event: .outboxExpired(job: "J", retentionDays: 1), prev: first.hash)
            forged.type = type
            forged.details = details
            forged.hash = forged.computedHash
            let path = s.layout.journal + "/" + segment
            try FileSystem.writeAtomically(path, try FileSystem.readFile(path) + forged.line + [0x0A], mode: 0o600)
            XCTAssertThrowsError(try JournalVerifier.verify(dir: s.layout.journal) { _, _ in nil }) { error in
                let text = "\(error)"
                XCTAssertTrue(
                    type == "job.teleported"
                        ? text.contains("\"job.teleported\" is not an audit event type")
                        : text.contains("job.finished lacks its field \"records\""),
                    text)
                XCTAssertTrue(text.contains(":2:"), "names the line: \(text)")
            }
        }
    }
}

/// The README's table of event types is the definitions, row for row.
final class AuditEventDocsTests: XCTestCase {
    func testTheReadmeTableListsEveryTypeWithItsFields() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        var documented: [String: [String]] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 2,
                let type = AuditEventType(rawValue: cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`")))
            else { continue }
            documented[type.rawValue] = cells[1].split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            }
        }
        for t in AuditEventType.allCases {
            XCTAssertEqual(
                documented[t.rawValue], t.fields.map { $0.name + ($0.isOptional ? "?" : "") },
                "README row for \(t.rawValue)")
        }
    }
}
