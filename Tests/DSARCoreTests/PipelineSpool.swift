import DSARCore
import DSARTestSupport
import Foundation
import Logging
import XCTest

/// A real spool in a temp directory made by the library (no binary): `dsar init`'s layout, a real
/// audit journal, and one real CSV connector over a file of the test's rows.
final class PipelineSpool {
    let spool: TempSpool
    let journal: Journal
    let logger = Logger(label: "test")
    var layout: SpoolLayout { spool.layout }

    init(
        config: String = "settle_seconds: 0\n",
        csv: String = "email,user_id\nalice@example.com,1042\nbob@example.com,2001\n"
    ) throws {
        spool = try TempSpool()
        try SpoolSession.initialize(spool.layout)
        try FileSystem.writeAtomically(spool.root + "/config.yaml", Array(config.utf8), mode: 0o640)
        try FileSystem.writeAtomically(spool.base + "/crm.csv", Array(csv.utf8), mode: 0o644)
        journal = try Journal(layout: spool.layout, signer: nil)
    }

    /// The CSV connector over `crm.csv` (email and user_id columns).
    func connectors() throws -> [any Connector] {
        let file = spool.base + "/crm.yaml"
        try FileSystem.writeAtomically(
            file,
            Array(
                "name: crm\ntype: csv\npaths: [ \(spool.base)/crm.csv ]\ncolumns: { email: email, user_id: user_id }\n"
                    .utf8), mode: 0o644)
        let (c, problems) = try ConnectorCatalog.parse(file: file, checkSources: true)
        XCTAssertEqual(problems.map(\.description), [])
        return ConnectorRegistry.make([try XCTUnwrap(c)])
    }

    /// A processor on this spool, journaling into ``journal``.
    func processor(
        _ configuration: Processor.Configuration = Processor.Configuration(), connectors: [any Connector]? = nil
    ) throws -> Processor {
        try Processor(
            layout: layout, config: try SpoolConfig.load(layout), configuration: configuration,
            connectors: connectors ?? (try self.connectors()),
            audit: journal, logger: logger)
    }

    /// Journal event types, in order.
    func events() throws -> [String] { try journal.entries().map(\.entry.type) }

    /// Journal entries of one type.
    func entries(_ type: String) throws -> [JournalEntry] {
        try journal.entries().map(\.entry).filter { $0.type == type }
    }

    /// Drops a request into the inbox (atomically), its mtime `secondsAgo` in the past.
    func drop(_ name: String, _ body: String, secondsAgo: Double = 10) throws {
        try spool.drop(name, body)
        age(spool.root + "/inbox/" + name, secondsAgo: secondsAgo)
    }

    func list(_ dir: String) -> [String] { spool.list(dir) }
    func text(_ relative: String) -> String { spool.text(relative) }
}
