import Foundation
import Mustache

/// What the subject report says, as typed values for the Mustache templates (`index.html`,
/// `README.txt`): the Art. 15(1)(a)–(h) and 15(2) facts from config.yaml and the connector
/// configs, and the subject's data per source and table. Every text is plain: the templates escape it.
package struct ReportModel: Sendable {
    /// One identifier searched for.
    package struct SearchedIdentifier: Sendable {
        package var type: String
        package var value: String
    }

    /// The controller or the DPO.
    package struct Party: Sendable {
        package var name: String?
        package var address: String?
        package var contact: String?
    }

    /// The supervisory authority.
    package struct Authority: Sendable {
        package var name: String
        package var url: String
    }

    /// One recipient of a source's data (Art. 15(1)(c)); `safeguard` for a third country (Art. 15(2)).
    package struct Recipient: Sendable {
        // Names unique in the model: a nil value must not show the enclosing source's (Mustache looks up the stack).
        package var recipientName: String?
        package var recipientCategory: String?
        package var country: String
        package var thirdCountry: Bool
        package var safeguard: String?
        /// Another recipient follows (for separators).
        package var more: Bool
    }

    /// One link to a page of a large table.
    package struct PageLink: Sendable {
        package var href: String
        package var number: Int
        package var from: Int
        package var to: Int
    }

    /// One record as a table row: where it was found, then one cell per column.
    package struct Row: Sendable {
        package var location: String
        /// One cell per column; in a compact table one cell with the record's own `key: value` lines.
        package var cells: [String]
        /// The same cells with their column names (README.txt), only the non-empty ones; in a
        /// compact table the record's own fields.
        package var fields: [Field]
        /// The table is compact (``ReportModel/maxColumns``): render `fields`, not `cells`.
        package var compact: Bool
    }

    /// One named cell.
    package struct Field: Sendable {
        package var column: String
        package var value: String
    }

    /// One table of a source: the first rows, and links to pages holding all of them.
    package struct Table: Sendable {
        package var source: String
        package var name: String
        /// Empty in a compact table.
        package var columns: [String]
        /// The records have more distinct keys than ``ReportModel/maxColumns``: one cell per row
        /// lists only that record's own fields.
        package var compact: Bool
        package var rows: [Row]
        package var total: Int
        package var shown: Int
        /// More rows than shown: see `pages`.
        package var paged: Bool
        package var pages: [PageLink]
    }

    /// One source (connector) with its facts and the subject's data.
    package struct Source: Sendable {
        package var name: String
        package var anchor: String
        package var description: String?
        package var category: String?
        package var purpose: String?
        package var legalBasis: String?
        package var retention: String?
        package var origin: String?
        package var automatedDecisions: String?
        /// `automated_decisions: none`.
        package var noAutomatedDecisions: Bool
        package var recipients: [Recipient]
        /// `disclosed_to: []`: nobody receives this data.
        package var noRecipients: Bool
        /// `disclosed_to` not configured.
        package var recipientsUnknown: Bool
        package var records: Int
        /// The source could not be searched completely (the job is PARTIAL).
        package var incomplete: Bool
        package var status: String
        package var error: String?
        /// The machine-readable files (`data/<source>/…`).
        package var files: [String]
        /// Records of other people that mention the subject (Art. 15(4)).
        package var mentions: Int
        /// Other people's details masked in them.
        package var masked: Int
        package var hasOthers: Bool
        /// Some of `records` are other people's records that mention the subject (`mentions` of them).
        package var hasMentions: Bool
        package var tables: [Table]
    }

    /// The report's language (`en`, `de`, …).
    package var language: String
    /// The request's reference (its `request_id`, else the job id).
    package var requestRef: String
    package var jobID: String
    /// The day the report was made (YYYY-MM-DD).
    package var preparedOn: String
    /// The regulation the request was made under.
    package var gdpr: Bool
    package var ccpa: Bool
    /// A dry run: nothing was changed.
    package var dryRun: Bool
    /// Who holds the data (config.yaml `controller:`); nil: not configured.
    package var controller: Party?
    /// The data protection officer (`dpo:`).
    package var dpo: Party?
    /// Where to complain (`supervisory_authority:`).
    package var authority: Authority?
    /// The operator's own text on the subject's rights (`rights:`), replacing the built-in one.
    package var rights: String?
    package var identifiers: [SearchedIdentifier]
    package var sources: [Source]
    /// Every machine-readable file (Art. 20).
    package var files: [String]
    /// Some source could not be searched completely.
    package var incomplete: Bool
    /// No source found anything.
    package var nothingFound: Bool

    /// Rows of each table shown in index.html.
    package static let indexRows = 50
    /// Rows per page of `report/<source>/<table>-<n>.html`.
    package static let pageRows = 500
    /// The most columns a table has: records with more distinct keys between them (a schemaless
    /// log) are shown compact, each row listing only its own fields, so the report grows with the
    /// data, not with rows × keys.
    package static let maxColumns = 20
}

/// One page of a large table (`report/<source>/<table>-<n>.html`), for `page.html`.
package struct ReportPage: Sendable {
    package var language: String
    package var requestRef: String
    package var source: String
    package var table: String
    package var number: Int
    package var count: Int
    package var from: Int
    package var to: Int
    package var total: Int
    package var columns: [String]
    /// See ``ReportModel/Table/compact``.
    package var compact: Bool
    package var rows: [ReportModel.Row]
    package var previous: String?
    package var next: String?
    /// The page's name in the ZIP.
    package var path: String
}

/// How a job's findings are laid out in the report: per connector, per table, the record indices.
package struct ReportLayout: Sendable {
    package struct TablePlan: Sendable {
        package var outcome: Int
        package var table: String
        package var records: [Int]
        /// The union of the records' keys (in order of appearance); empty when `compact`.
        package var columns: [String]
        /// More distinct keys than ``ReportModel/maxColumns``: rows list their own fields.
        package var compact: Bool
        /// Page names (`report/<source>/<table>-<n>.html`), empty when every row is in index.html.
        package var pages: [String]
    }

    package var tables: [TablePlan]
    /// The subject's identifiers prepared once for ``ExportView`` (not per record).
    package var subject: ExportView.Subject

    /// Groups each outcome's records by table (in order of appearance), with the union of their
    /// columns, or compact when that union is larger than ``ReportModel/maxColumns``.
    package init(_ job: FinishingJob) {
        let subject = ExportView.Subject(job.identifiers)
        self.subject = subject
        var out: [TablePlan] = []
        for (oi, o) in job.outcomes.enumerated() {
            var order: [String] = []
            var byTable: [String: [Int]] = [:]
            for (ri, r) in o.findings.found.enumerated() {
                if byTable[r.table] == nil { order.append(r.table) }
                byTable[r.table, default: []].append(ri)
            }
            for t in order {
                let idx = byTable[t]!
                var columns: [String] = []
                var seen = Set<String>()
                var compact = false
                union: for ri in idx {
                    for m in ExportView.view(o.findings.found[ri], subject: subject).fields
                    where seen.insert(m.key).inserted {
                        columns.append(m.key)
                        if columns.count > ReportModel.maxColumns {
                            compact = true
                            columns = []
                            break union
                        }
                    }
                }
                var pages: [String] = []
                if idx.count > ReportModel.indexRows {
                    let n = (idx.count + ReportModel.pageRows - 1) / ReportModel.pageRows
                    let dir = "report/" + FindingsWriter.safeName(o.name) + "/" + FindingsWriter.safeName(t)
                    pages = (1...n).map { "\(dir)-\($0).html" }
                }
                out.append(
                    TablePlan(outcome: oi, table: t, records: idx, columns: columns, compact: compact, pages: pages))
            }
        }
        tables = out
    }

    /// Every page, in ZIP order.
    package var pages: [(table: Int, page: Int, path: String)] {
        var out: [(Int, Int, String)] = []
        for (ti, t) in tables.enumerated() { for (pi, p) in t.pages.enumerated() { out.append((ti, pi, p)) } }
        return out
    }
}

extension ReportModel {
    /// The model of `job`'s report in `language`, with the facts of `settings` and the data files `files`.
    package init(
        _ job: FinishingJob, layout: ReportLayout, settings: ReportSettings, language: String, files: [String],
        now: Date
    ) {
        let fallback = settings.languages
        self.language = language
        requestRef = job.record.requestID ?? job.record.jobID
        jobID = job.record.jobID
        preparedOn = Timestamp.formatDay(now)
        gdpr = job.record.regulation == .gdpr
        ccpa = job.record.regulation == .ccpa
        dryRun = job.record.dryRun
        controller = settings.controller.map {
            Party(
                name: $0.name.text(language, fallback: fallback),
                address: $0.address?.text(language, fallback: fallback),
                contact: $0.contact)
        }
        dpo = settings.dpo.map { Party(name: $0.name, address: nil, contact: $0.contact) }
        authority = settings.authority.flatMap { a in
            a.name.text(language, fallback: fallback).map { Authority(name: $0, url: a.url) }
        }
        rights = settings.rights?.text(language, fallback: fallback)
        identifiers = job.identifiers.map { SearchedIdentifier(type: $0.type, value: $0.value) }
        self.files = files
        sources = job.outcomes.enumerated().map { oi, o in
            let m = o.metadata
            // A blank fact is not a statement: the templates say "not stated".
            func t(_ k: String) -> String? {
                m.text(k, language).flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
            }
            let automated = t("automated_decisions")
            let none = automated.map { $0.trimmingCharacters(in: .whitespaces).lowercased() == "none" } ?? false
            let stats = ExportView.stats(o, subject: job.identifiers)
            let prefix = "data/\(FindingsWriter.safeName(o.name))/"
            let tables = layout.tables.filter { $0.outcome == oi }.map { plan in
                Table(
                    source: o.name, name: plan.table, columns: plan.columns, compact: plan.compact,
                    rows: ReportModel.rows(
                        o, plan, range: 0..<min(plan.records.count, ReportModel.indexRows), layout.subject),
                    total: plan.records.count, shown: min(plan.records.count, ReportModel.indexRows),
                    paged: !plan.pages.isEmpty,
                    pages: plan.pages.enumerated().map { k, p in
                        PageLink(
                            href: p, number: k + 1, from: k * ReportModel.pageRows + 1,
                            to: min((k + 1) * ReportModel.pageRows, plan.records.count))
                    })
            }
            return Source(
                name: o.name, anchor: "src-" + FindingsWriter.safeName(o.name), description: t("description"),
                category: t("category"), purpose: t("purpose"), legalBasis: t("legal_basis"), retention: t("retention"),
                origin: t("source"), automatedDecisions: none ? nil : automated, noAutomatedDecisions: none,
                recipients: (m.disclosedTo ?? []).enumerated().map { k, d in
                    Recipient(
                        recipientName: d.name, recipientCategory: d.category?.text(language, fallback: fallback),
                        country: d.country, thirdCountry: d.isThirdCountry,
                        safeguard: d.safeguard?.text(language, fallback: fallback),
                        more: k + 1 < (m.disclosedTo?.count ?? 0))
                },
                noRecipients: m.disclosedTo?.isEmpty == true, recipientsUnknown: m.disclosedTo == nil,
                records: o.findings.records, incomplete: o.status != .ok || !o.findings.gaps.isEmpty,
                status: o.status.rawValue, error: o.error, files: files.filter { $0.hasPrefix(prefix) },
                mentions: stats.mentions, masked: stats.masked, hasOthers: stats.mentions > 0 || stats.masked > 0,
                hasMentions: stats.mentions > 0,
                tables: tables)
        }
        incomplete = job.record.status == .partial || sources.contains { $0.incomplete }
        nothingFound = sources.allSatisfy { $0.records == 0 }
    }

    /// The rows `range` of a table: the exported view of each record (``ExportView``), one cell per
    /// column, or (compact) the record's own fields; each row costs what its record holds.
    static func rows(
        _ o: ConnectorOutcome, _ plan: ReportLayout.TablePlan, range: Range<Int>, _ subject: ExportView.Subject
    ) -> [Row] {
        var names = FindingsWriter.SubjectSourceCache()
        return plan.records[range].map { ri in
            let r = o.findings.found[ri]
            let fields = ExportView.view(r, subject: subject).fields
            // Only the file's base name: no server path in the report (a live database has no line).
            let file = names.name(r.source)
            let location = r.line > 0 ? "\(file):\(r.line)" : file
            // README.txt: continuation lines stay indented under their field (most values have no newline).
            func field(_ k: String, _ v: String) -> Field {
                Field(
                    column: k,
                    value: v.utf8.contains(0x0A) ? v.replacingOccurrences(of: "\n", with: "\n        ") : v)
            }
            if plan.compact {
                let own = fields.map { ($0.key, ReportModel.cell($0.value)) }.filter { !$0.1.isEmpty }
                // One cell too, for report_templates that know only `cells`.
                return Row(
                    location: location, cells: [own.map { "\($0.0): \($0.1)" }.joined(separator: "\n")],
                    fields: own.map { field($0.0, $0.1) }, compact: true)
            }
            var byKey: [String: JSONValue] = [:]
            for f in fields where byKey[f.key] == nil { byKey[f.key] = f.value }
            let cells = plan.columns.map { byKey[$0].map(ReportModel.cell) ?? "" }
            return Row(
                location: location, cells: cells,
                fields: zip(plan.columns, cells).filter { !$0.1.isEmpty }.map { field($0.0, $0.1) }, compact: false)
        }
    }

    /// A field value as the text of a table cell.
    static func cell(_ v: JSONValue) -> String {
        switch v {
        case .null: return ""
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n
        case .string(let s): return s
        case .array, .object: return String(decoding: JSONWriter().encode(v), as: UTF8.self)
        }
    }
}

extension ReportPage {
    /// Page `page` of table `table` of `layout`.
    package init(_ job: FinishingJob, layout: ReportLayout, table ti: Int, page pi: Int, language: String) {
        let plan = layout.tables[ti]
        let o = job.outcomes[plan.outcome]
        let from = pi * ReportModel.pageRows
        let to = min(from + ReportModel.pageRows, plan.records.count)
        // Pages link to their siblings by base name (they share the folder).
        func base(_ p: String) -> String { (p as NSString).lastPathComponent }
        self.init(
            language: language, requestRef: job.record.requestID ?? job.record.jobID, source: o.name,
            table: plan.table, number: pi + 1, count: plan.pages.count, from: from + 1, to: to,
            total: plan.records.count, columns: plan.columns, compact: plan.compact,
            rows: ReportModel.rows(o, plan, range: from..<to, layout.subject),
            previous: pi > 0 ? base(plan.pages[pi - 1]) : nil,
            next: pi + 1 < plan.pages.count ? base(plan.pages[pi + 1]) : nil, path: plan.pages[pi])
    }
}

// The report's model types are looked up by name directly instead of through Mirror: Mustache's
// Mirror lookup decodes every stored property's type on every `{{name}}`, which was half of the CPU
// time of a 1000-subject batch. Each `child(named:)` lists exactly the stored properties (an optional
// as its value or nil, as Mirror gives it); ReportModelTests checks them against Mirror.
extension ReportModel.SearchedIdentifier: MustacheParent {
    package func child(named name: String) -> Any? {
        switch name {
        case "type": self.type
        case "value": self.value
        default: nil
        }
    }
}

extension ReportModel.Party: MustacheParent {
    package func child(named name: String) -> Any? {
        switch name {
        case "name": self.name
        case "address": self.address
        case "contact": self.contact
        default: nil
        }
    }
}

extension ReportModel.Authority: MustacheParent {
    package func child(named name: String) -> Any? {
        switch name {
        case "name": self.name
        case "url": self.url
        default: nil
        }
    }
}

extension ReportModel.Recipient: MustacheParent {
    package func child(named name: String) -> Any? {
        switch name {
        case "recipientName": self.recipientName
        case "recipientCategory": self.recipientCategory
        case "country": self.country
        case "thirdCountry": self.thirdCountry
        case "safeguard": self.safeguard
        case "more": self.more
        default: nil
        }
    }
}

extension ReportModel.PageLink: MustacheParent {
    package func child(named name: String) -> Any? {
        switch name {
        case "href": self.href
        case "number": self.number
        case "from": self.from
        case "to": self.to
        default: nil
        }
    }
}

extension ReportModel.Table: MustacheParent {
    package func child(named name: String) -> Any? {
        switch name {
        case "source": self.source
        case "name": self.name
        case "columns": self.columns
        case "compact": self.compact
        case "rows": self.rows
        case "total": self.total
        case "shown": self.shown
        case "paged": self.paged
        case "pages": self.pages
        default: nil
        }
    }
}

extension ReportModel.Source: MustacheParent {
    package func child(named name: String) -> Any? {
        switch name {
        case "name": self.name
        case "anchor": self.anchor
        case "description": self.description
        case "category": self.category
        case "purpose": self.purpose
        case "legalBasis": self.legalBasis
        case "retention": self.retention
        case "origin": self.origin
        case "automatedDecisions": self.automatedDecisions
        case "noAutomatedDecisions": self.noAutomatedDecisions
        case "recipients": self.recipients
        case "noRecipients": self.noRecipients
        case "recipientsUnknown": self.recipientsUnknown
        case "records": self.records
        case "incomplete": self.incomplete
        case "status": self.status
        case "error": self.error
        case "files": self.files
        case "mentions": self.mentions
        case "masked": self.masked
        case "hasOthers": self.hasOthers
        case "hasMentions": self.hasMentions
        case "tables": self.tables
        default: nil
        }
    }
}

extension ReportModel: MustacheParent {
    package func child(named name: String) -> Any? {
        switch name {
        case "language": self.language
        case "requestRef": self.requestRef
        case "jobID": self.jobID
        case "preparedOn": self.preparedOn
        case "gdpr": self.gdpr
        case "ccpa": self.ccpa
        case "dryRun": self.dryRun
        case "controller": self.controller
        case "dpo": self.dpo
        case "authority": self.authority
        case "rights": self.rights
        case "identifiers": self.identifiers
        case "sources": self.sources
        case "files": self.files
        case "incomplete": self.incomplete
        case "nothingFound": self.nothingFound
        default: nil
        }
    }
}

extension ReportPage: MustacheParent {
    package func child(named name: String) -> Any? {
        switch name {
        case "language": self.language
        case "requestRef": self.requestRef
        case "source": self.source
        case "table": self.table
        case "number": self.number
        case "count": self.count
        case "from": self.from
        case "to": self.to
        case "total": self.total
        case "columns": self.columns
        case "compact": self.compact
        case "rows": self.rows
        case "previous": self.previous
        case "next": self.next
        case "path": self.path
        default: nil
        }
    }
}

// Rows are the bulk of a large report: looked up by name directly instead of through Mirror.
extension ReportModel.Row: MustacheParent {
    package func child(named name: String) -> Any? {
        switch name {
        case "location": location
        case "cells": cells
        case "fields": fields
        case "compact": compact
        default: nil
        }
    }
}

extension ReportModel.Field: MustacheParent {
    package func child(named name: String) -> Any? {
        switch name {
        case "column": column
        case "value": value
        default: nil
        }
    }
}
