import Foundation

/// The readable part of an export bundle, for the data subject: `README.txt` and `index.html`,
/// with the Art. 15 information of every source (category, purpose, retention) and record counts.
package enum SubjectReport {
    struct Row {
        var name: String
        var meta: SourceMetadata
        var records: Int
        var status: String
        var files: [String]
    }

    static func rows(_ job: FinishingJob, files: [String]) -> [Row] {
        job.outcomes.map { o in
            Row(
                name: o.name, meta: o.metadata, records: o.findings.records, status: o.status.rawValue,
                files: files.filter { $0.hasPrefix("data/\(FindingsWriter.safeName(o.name))/") })
        }
    }

    /// README.txt.
    package static func text(_ job: FinishingJob, files: [String], now: Date) -> String {
        var out = """
            COPY OF YOUR PERSONAL DATA
            ==========================

            This archive answers your request \(job.record.requestID ?? job.record.jobID) (\(job.record.regulation == .gdpr ? "GDPR Art. 15" : "CCPA right to know")).
            Prepared on \(Timestamp.formatDay(now)) (job \(job.record.jobID)).

            We searched every system listed below for these identifiers of yours:

            """
        for id in job.identifiers {
            out += "  - \(id.type): \(id.value)\n"
        }
        out += "\nSOURCES\n-------\n"
        for r in rows(job, files: files) {
            out += "\n\(r.name)\(r.meta.description.map { " — \($0)" } ?? "")\n"
            out +=
                "  Records about you: \(r.records)\(r.status == "ok" ? "" : " (this source could not be searched completely: \(r.status))")\n"
            if let c = r.meta.category { out += "  Category of data:  \(c)\n" }
            if let p = r.meta.purpose { out += "  Purpose:           \(p)\n" }
            if let t = r.meta.retention { out += "  Retention:         \(t)\n" }
            for f in r.files { out += "  File:              \(f)\n" }
        }
        out += """

            FILES
            -----
            data/<source>/<table>.json  every record found, as JSON, with the file and line it came from
            data/<source>/<table>.csv   for CSV sources, the original rows
            index.html                  this report as a web page

            """
        return out
    }

    static func esc(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default: o.append(c)
            }
        }
        return o
    }

    /// index.html.
    package static func html(_ job: FinishingJob, files: [String], now: Date) -> String {
        var rowsHTML = ""
        for r in rows(job, files: files) {
            let links = r.files.map { "<a href=\"\(esc($0))\">\(esc($0))</a>" }.joined(separator: "<br>")
            rowsHTML +=
                "<tr><td><strong>\(esc(r.name))</strong><br><small>\(esc(r.meta.description ?? ""))</small></td>"
            rowsHTML +=
                "<td>\(esc(r.meta.category ?? "-"))</td><td>\(esc(r.meta.purpose ?? "-"))</td><td>\(esc(r.meta.retention ?? "-"))</td>"
            rowsHTML += "<td>\(r.records)\(r.status == "ok" ? "" : " (incomplete)")</td><td>\(links)</td></tr>\n"
        }
        let ids = job.identifiers.map { "<li>\(esc($0.type)): \(esc($0.value))</li>" }.joined()
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Copy of your personal data</title>
            <style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.4em;vertical-align:top;text-align:left}</style>
            </head><body>
            <h1>Copy of your personal data</h1>
            <p>This archive answers your request <strong>\(esc(job.record.requestID ?? job.record.jobID))</strong> (\(job.record.regulation == .gdpr ? "GDPR Art. 15" : "CCPA right to know")), prepared on \(Timestamp.formatDay(now)).</p>
            <h2>Identifiers searched</h2><ul>\(ids)</ul>
            <h2>Where we hold data about you</h2>
            <table><tr><th>Source</th><th>Category</th><th>Purpose</th><th>Retention</th><th>Records</th><th>Files</th></tr>
            \(rowsHTML)</table>
            </body></html>

            """
    }
}
