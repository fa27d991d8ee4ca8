import Foundation

/// The readable part of an export bundle, for the data subject: `README.txt`, `index.html` and, for
/// tables longer than ``ReportModel/indexRows``, `report/<source>/<table>-<n>.html`, rendered from
/// ``ReportModel`` with the Mustache templates of ``ReportTemplates`` in the job's language.
package enum SubjectReport {
    /// The language of `job`'s report: the one stored in its record (the request's), else the spool default.
    package static func language(_ job: FinishingJob, settings: ReportSettings) -> String {
        let l = job.record.language ?? job.request.language ?? settings.defaultLanguage
        return settings.languages.contains(l) || ReportTemplates.builtInLanguages.contains(l)
            ? l : settings.defaultLanguage
    }

    /// README.txt and index.html of `job`, and the layout its pages are rendered from.
    package static func render(
        _ job: FinishingJob, files: [String], now: Date, settings: ReportSettings
    ) -> (readme: String, index: String, layout: ReportLayout) {
        let language = language(job, settings: settings)
        let layout = ReportLayout(job)
        let model = ReportModel(job, layout: layout, settings: settings, language: language, files: files, now: now)
        return (
            settings.templates.render("README.txt", language: language, model),
            settings.templates.render("index.html", language: language, model), layout
        )
    }

    /// One page of a large table: its path in the ZIP and its HTML (rendered alone, so a large
    /// source is never held as one string).
    package static func page(
        _ job: FinishingJob, layout: ReportLayout, table: Int, page: Int, settings: ReportSettings
    ) -> (path: String, html: String) {
        let language = language(job, settings: settings)
        let p = ReportPage(job, layout: layout, table: table, page: page, language: language)
        return (p.path, settings.templates.render("page.html", language: language, p))
    }
}
