import DSARCore
import DSARTestSupport
import Foundation
import Logging
import XCTest

final class ExecEraserTests: XCTestCase {
    let logger = Logger(label: "test")

    /// A real plugin (a shell script) deletes the subject's lines from its own file and reports the counts.
    func testThePluginsReportIsTheResult() async throws {
        let s = try TempSpool()
        try "1 alice@example.com\n2 bob@example.com\n3 alice@example.com\n".write(
            toFile: s.base + "/crm.txt", atomically: true, encoding: .utf8)
        let plugin = s.base + "/crm.sh"
        try """
        #!/bin/sh
        set -e
        req=$(cat)
        case "$req" in *'"action":"delete"'*|*'"action": "delete"'*) ;; *) echo "not a delete: $req" >&2; exit 3 ;; esac
        email=$(printf '%s' "$req" | grep -o '[a-z0-9.]*@example\\.com' | head -n 1)
        before=$(wc -l < crm.txt)
        grep -vF "$email" crm.txt > crm.tmp || true
        after=$(wc -l < crm.tmp)
        mv crm.tmp crm.txt
        echo "log line first"
        echo "{\\"deleted\\": $((before - after)), \\"remaining\\": 0, \\"retained\\": 1, \\"detail\\": \\"crm rows\\"}"
        """.write(toFile: plugin, atomically: true, encoding: .utf8)
        chmod(plugin, 0o755)
        let c = try loadConnector("type: exec\ncommand: 'sh crm.sh'\n", in: s.base, name: "crm")
        let connector = try XCTUnwrap(c.makeConnector() as? ExecConnector)
        XCTAssertEqual(connector.eraseStrategies, [EraseStrategyEntry(strategy: .plugin)])

        let result = try await connector.erase([eraseJob("alice@example.com")], logger: logger)

        XCTAssertEqual(try String(contentsOfFile: s.base + "/crm.txt", encoding: .utf8), "2 bob@example.com\n")
        let f = try XCTUnwrap(result["J1"]?.first)
        XCTAssertEqual(result["J1"]?.count, 1)
        XCTAssertEqual(f.file, "exec:crm")
        XCTAssertEqual(f.strategy, .plugin)
        XCTAssertNil(f.table)
        XCTAssertEqual([f.deleted, f.redacted, f.retained, f.remaining], [2, 0, 1, 0])
        XCTAssertEqual(f.detail, "crm rows")
    }

    /// A plugin that does not report counts is an error, never an erasure of nothing.
    func testAPluginWithoutAReportIsAnError() async throws {
        let s = try TempSpool()
        let c = try loadConnector("type: exec\ncommand: 'cat > /dev/null; echo done'\n", in: s.base, name: "quiet")
        let connector = try XCTUnwrap(c.makeConnector() as? ExecConnector)
        do {
            _ = try await connector.erase([eraseJob("alice@example.com")], logger: logger)
            XCTFail("no error")
        } catch {
            XCTAssertTrue("\(error)".contains("plugin quiet did not report"), "\(error)")
        }
    }
}
