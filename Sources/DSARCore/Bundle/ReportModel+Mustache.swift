import Mustache

// Every value of the report model is looked up by name directly instead of through `Mirror`: a
// Mirror lookup reflects every stored property of the value for each `{{name}}` (and again for
// each value up the context stack), which was half of the CPU time of sealing a small bundle.
// Each `child(named:)` answers exactly the stored properties, under their Swift names, with
// optionals unwrapped (nil when absent), as the Mirror lookup did (ReportModelMustacheTests
// checks every property of every type against Mirror). A new stored property needs a case here.

extension ReportModel: MustacheParent {
    /// The stored property `name` (optionals unwrapped), nil for any other name.
    package func child(named name: String) -> Any? {
        switch name {
        case "language": language
        case "requestRef": requestRef
        case "jobID": jobID
        case "preparedOn": preparedOn
        case "gdpr": gdpr
        case "ccpa": ccpa
        case "dryRun": dryRun
        case "controller": controller
        case "dpo": dpo
        case "authority": authority
        case "rights": rights
        case "identifiers": identifiers
        case "sources": sources
        case "files": files
        case "incomplete": incomplete
        case "nothingFound": nothingFound
        default: nil
        }
    }
}

extension ReportModel.SearchedIdentifier: MustacheParent {
    /// The stored property `name`, nil for any other name.
    package func child(named name: String) -> Any? {
        switch name {
        case "type": type
        case "value": value
        default: nil
        }
    }
}

extension ReportModel.Party: MustacheParent {
    /// The stored property `name` (optionals unwrapped), nil for any other name.
    package func child(named key: String) -> Any? {
        switch key {
        case "name": name
        case "address": address
        case "contact": contact
        default: nil
        }
    }
}

extension ReportModel.Authority: MustacheParent {
    /// The stored property `name`, nil for any other name.
    package func child(named key: String) -> Any? {
        switch key {
        case "name": name
        case "url": url
        default: nil
        }
    }
}

extension ReportModel.Recipient: MustacheParent {
    /// The stored property `name` (optionals unwrapped), nil for any other name.
    package func child(named name: String) -> Any? {
        switch name {
        case "recipientName": recipientName
        case "recipientCategory": recipientCategory
        case "country": country
        case "thirdCountry": thirdCountry
        case "safeguard": safeguard
        case "more": more
        default: nil
        }
    }
}

extension ReportModel.PageLink: MustacheParent {
    /// The stored property `name`, nil for any other name.
    package func child(named name: String) -> Any? {
        switch name {
        case "href": href
        case "number": number
        case "from": from
        case "to": to
        default: nil
        }
    }
}

extension ReportModel.Table: MustacheParent {
    /// The stored property `name`, nil for any other name.
    package func child(named key: String) -> Any? {
        switch key {
        case "source": source
        case "name": name
        case "columns": columns
        case "compact": compact
        case "rows": rows
        case "total": total
        case "shown": shown
        case "paged": paged
        case "pages": pages
        default: nil
        }
    }
}

extension ReportModel.Source: MustacheParent {
    /// The stored property `name` (optionals unwrapped), nil for any other name.
    package func child(named key: String) -> Any? {
        switch key {
        case "name": name
        case "anchor": anchor
        case "description": description
        case "category": category
        case "purpose": purpose
        case "legalBasis": legalBasis
        case "retention": retention
        case "origin": origin
        case "automatedDecisions": automatedDecisions
        case "noAutomatedDecisions": noAutomatedDecisions
        case "recipients": recipients
        case "noRecipients": noRecipients
        case "recipientsUnknown": recipientsUnknown
        case "records": records
        case "incomplete": incomplete
        case "status": status
        case "error": error
        case "files": files
        case "mentions": mentions
        case "masked": masked
        case "hasOthers": hasOthers
        case "hasMentions": hasMentions
        case "tables": tables
        default: nil
        }
    }
}

extension ReportPage: MustacheParent {
    /// The stored property `name` (optionals unwrapped), nil for any other name.
    package func child(named name: String) -> Any? {
        switch name {
        case "language": language
        case "requestRef": requestRef
        case "source": source
        case "table": table
        case "number": number
        case "count": count
        case "from": from
        case "to": to
        case "total": total
        case "columns": columns
        case "compact": compact
        case "rows": rows
        case "previous": previous
        case "next": next
        case "path": path
        default: nil
        }
    }
}
