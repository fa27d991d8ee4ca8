import DSARTestSupport
import Foundation
import Mustache
import XCTest

@testable import DSARCore

extension ReportModelTests {
    /// Every value of the report model answers `child(named:)` for each of its stored properties
    /// exactly as the Mirror lookup it replaces (optionals unwrapped, nil when absent), and nil for
    /// any other name, down through every nested value: a custom template may name any of them.
    func testEveryReportModelValueIsLookedUpByNameAsMirrorWould() throws {
        let (config, _) = try config()
        let j = try job(language: "en", rows: 600)
        let files = FindingsWriter.plan(j.outcomes, subject: j.identifiers).map(\.name)
        let layout = ReportLayout(j)
        let model = ReportModel(j, layout: layout, settings: config.report, language: "en", files: files, now: Date())
        let page = ReportPage(j, layout: layout, table: 0, page: 1, language: "en")
        var seen = Set<String>()
        func unwrap(_ v: Any) -> Any? {
            let m = Mirror(reflecting: v)
            guard m.displayStyle == .optional else { return v }
            return m.children.first?.value
        }
        func check(_ value: Any, _ path: String) {
            if let array = value as? [Any] {
                for (k, e) in array.enumerated() { check(e, "\(path)[\(k)]") }
                return
            }
            let mirror = Mirror(reflecting: value)
            guard mirror.displayStyle == .struct else { return }
            guard let parent = value as? MustacheParent else {
                XCTFail("\(path): \(type(of: value)) is looked up through Mirror")
                return
            }
            seen.insert("\(type(of: value))")
            XCTAssertNil(parent.child(named: "noSuchProperty"), path)
            for c in mirror.children {
                guard let label = c.label else { continue }
                let expected = unwrap(c.value)
                let got = parent.child(named: label)
                XCTAssertEqual(
                    got.map { String(describing: $0) }, expected.map { String(describing: $0) }, "\(path).\(label)")
                if let expected { check(expected, "\(path).\(label)") }
            }
        }
        check(model, "model")
        check(page, "page")
        for t in ["ReportModel", "ReportPage", "Source", "Table", "Row", "Field", "Recipient", "Party", "Authority",
            "SearchedIdentifier", "PageLink"]
        {
            XCTAssertTrue(seen.contains(t), "the sample model has no \(t) to check: \(seen.sorted())")
        }
    }
}
