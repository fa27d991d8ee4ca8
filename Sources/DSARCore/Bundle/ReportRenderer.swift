import Foundation
import Mustache

/// A fast renderer for the report's Mustache templates (issue 18): swift-mustache spent a third of
/// the CPU time of a `dsar run` splitting names on "." and casting every context frame to its
/// protocols on every lookup, and concatenating Strings per token. A ``ReportRenderer`` is compiled
/// once from swift-mustache's own parsed template (so whitespace, standalone lines, `\r\n` and
/// comments are exactly swift-mustache's: its text tokens are taken as they are), with names split
/// once, and renders into one byte buffer, looking names up on a stack of frames cast once each.
///
/// Only a subset is compiled: text, `{{name}}`, `{{a.b}}`, `{{.}}`, `{{#x}}…{{/x}}`, `{{^x}}…{{/x}}`
/// and comments, after the `CONTENT_TYPE` pragma that ``ReportTemplates`` puts first. Anything else
/// (partials, transforms, inheritance blocks, unescaped variables, names like `.x`) compiles to nil
/// and the template keeps rendering through swift-mustache. Rendering gives up (nil, and the caller
/// renders through swift-mustache) on any value whose meaning swift-mustache decides by a protocol
/// this renderer does not implement: lambdas, templates, `MustacheCustomRenderable`,
/// `MustacheCustomRepresentation`, optionals inside `Any`, sequences other than `Array`.
struct ReportRenderer: Sendable {
    /// How `{{x}}` is escaped.
    enum Escaping: Sendable {
        /// ``ReportTemplates/ByteHTMLEscaping``.
        case html
        /// None (`README.txt`).
        case text
    }

    /// A name as looked up: `.` (or an empty name) is the current value; otherwise the first part is
    /// looked up on the stack and the others from that value.
    struct Name: Sendable {
        var parts: [String]
    }

    enum Node: Sendable {
        case text([UInt8])
        case variable(Name)
        case section(Name, [Node])
        case inverted(Name, [Node])
    }

    let escaping: Escaping
    let nodes: [Node]
    /// The bytes of the text nodes: a first guess of the output's size.
    let textBytes: Int

    /// The fast form of `template` (as compiled by ``ReportTemplates/compile(_:name:)``: its first token
    /// the `CONTENT_TYPE` pragma of `escaping`), or nil when it uses anything outside the subset.
    init?(_ template: MustacheTemplate, escaping: Escaping) {
        guard let tokens = Self.tokens(of: template), let first = tokens.first,
            first.label == "contentType", Self.isContentType(first.value, escaping)
        else { return nil }
        var size = 0
        guard let nodes = Self.compile(tokens.dropFirst(), textBytes: &size) else { return nil }
        self.escaping = escaping
        self.nodes = nodes
        self.textBytes = size
    }

    // MARK: Compiling (from swift-mustache's token tree, read through Mirror once per template)

    /// The tokens of `template` as (case name, payload), or nil if its layout is not the expected one.
    private static func tokens(of template: MustacheTemplate) -> [(label: String, value: Any)]? {
        guard let tokens = Mirror(reflecting: template).children.first(where: { $0.label == "tokens" })?.value,
            Mirror(reflecting: tokens).displayStyle == .collection
        else { return nil }
        var out: [(label: String, value: Any)] = []
        for token in Mirror(reflecting: tokens).children.map(\.value) {
            let m = Mirror(reflecting: token)
            guard m.displayStyle == .enum, let c = m.children.first, let label = c.label else { return nil }
            out.append((label, c.value))
        }
        return out
    }

    private static func isContentType(_ value: Any, _ escaping: Escaping) -> Bool {
        switch escaping {
        case .html: return value is ReportTemplates.ByteHTMLEscaping
        case .text: return String(describing: type(of: value)) == "TextContentType"
        }
    }

    /// The labelled fields of a token's payload tuple.
    private static func fields(_ payload: Any) -> [String: Any] {
        var out: [String: Any] = [:]
        for c in Mirror(reflecting: payload).children { if let l = c.label { out[l] = c.value } }
        return out
    }

    private static func compile(_ tokens: ArraySlice<(label: String, value: Any)>, textBytes: inout Int) -> [Node]? {
        var nodes: [Node] = []
        for (label, value) in tokens {
            switch label {
            case "text":
                guard let s = value as? String else { return nil }
                textBytes += s.utf8.count
                // Adjacent texts are one node (a standalone line's text is split around the tag).
                if case .text(let prev)? = nodes.last {
                    nodes[nodes.count - 1] = .text(prev + Array(s.utf8))
                } else {
                    nodes.append(.text(Array(s.utf8)))
                }
            case "variable", "section", "invertedSection":
                let f = fields(value)
                guard let rawName = f["name"] as? String, let transforms = f["transforms"] as? [String],
                    transforms.isEmpty, let name = Self.name(rawName)
                else { return nil }
                if label == "variable" {
                    nodes.append(.variable(name))
                    continue
                }
                guard let inner = f["template"] as? MustacheTemplate, let innerTokens = Self.tokens(of: inner),
                    let body = compile(innerTokens[...], textBytes: &textBytes)
                else { return nil }
                nodes.append(label == "section" ? .section(name, body) : .inverted(name, body))
            default:
                // unescapedVariable, partials, blocks, a second contentType: not in the subset.
                return nil
            }
        }
        return nodes
    }

    /// A name as swift-mustache's `getChild` splits it; nil for `.x` (looked up in the current
    /// value only), which the report's templates do not use.
    private static func name(_ s: String) -> Name? {
        if s == "." { return Name(parts: []) }
        if s.first == "." { return nil }
        return Name(parts: s.split(separator: ".").map(String.init))
    }

    // MARK: Values

    /// A value of the context, cast once: what swift-mustache decides by casting it on every use.
    enum Value {
        case string(String)
        case int(Int)
        case bool(Bool)
        /// An `Array` (the only `MustacheSequence` handled), with the array itself.
        case array(any ReportRenderSequence, Any)
        /// A `MustacheParent` (the report's model types, dictionaries), with the value itself.
        case parent(any MustacheParent, Any)
        /// Anything else: looked up through Mirror, printed with `String(describing:)`.
        case other(Any)

        /// The value as swift-mustache's `{{.}}` would print it, before escaping.
        var any: Any {
            switch self {
            case .string(let s): s
            case .int(let i): i
            case .bool(let b): b
            case .array(_, let a): a
            case .parent(_, let a): a
            case .other(let a): a
            }
        }
    }

    /// What a type of value is to the renderer (the same for every value of that type).
    enum Kind {
        case array
        case parent
        case other
        /// swift-mustache gives it a meaning of its own: render with swift-mustache.
        case unsupported
    }

    /// The kind of a value that is not exactly a String, Int or Bool.
    static func kind(of v: Any) -> Kind {
        // A String, Int or Bool reached by `as?` only (an Optional, a bridged class), lambdas,
        // templates and the protocols swift-mustache asks for before MustacheParent.
        if v is any ReportRenderOptional || v is String || v is Int || v is Bool || v is MustacheLambda
            || v is MustacheTemplate || v is any MustacheCustomRenderable || v is any MustacheCustomRepresentation
        {
            return .unsupported
        }
        if v is any ReportRenderSequence { return .array }
        if v is any MustacheSequence { return .unsupported }
        if v is any MustacheParent { return .parent }
        return .other
    }

    /// Why a render gave up.
    struct Unsupported: Error {}

    // MARK: Rendering

    /// `model` rendered, or nil when it holds a value this renderer does not handle as swift-mustache
    /// does (then render with swift-mustache).
    func render(_ model: Any) -> [UInt8]? {
        var run = Run(escaping: escaping)
        run.out.reserveCapacity(textBytes * 2 + 4096)
        do {
            guard let root = try run.value(model) else { return nil }
            run.stack.append(root)
            try run.render(nodes)
        } catch {
            return nil
        }
        return run.out
    }

    /// One render: the output, the context stack and the kinds of the types seen.
    private struct Run {
        let escaping: Escaping
        var out: [UInt8] = []
        var stack: [Value] = []
        /// Each type's ``Kind``, found once per render instead of by casts per value.
        var kinds: [ObjectIdentifier: Kind] = [:]

        init(escaping: Escaping) {
            self.escaping = escaping
            stack.reserveCapacity(8)
        }

        /// `v` cast once; throws when swift-mustache would treat it in a way this renderer does not.
        mutating func value(_ v: Any) throws(Unsupported) -> Value? {
            // Exact types first (a metadata compare): `as?` alone would also unwrap an Optional or bridge.
            let t = type(of: v)
            if t == String.self { return .string(v as! String) }
            if t == Int.self { return .int(v as! Int) }
            if t == Bool.self { return .bool(v as! Bool) }
            let id = ObjectIdentifier(t)
            let kind: Kind
            if let k = kinds[id] {
                kind = k
            } else {
                kind = ReportRenderer.kind(of: v)
                kinds[id] = kind
            }
            switch kind {
            case .array: return .array(v as! any ReportRenderSequence, v)
            case .parent: return .parent(v as! any MustacheParent, v)
            case .other: return .other(v)
            case .unsupported: throw Unsupported()
            }
        }

        /// The child `name` of frame `frame`, as swift-mustache's `_getImmediateChild` finds it.
        mutating func child(_ name: String, of frame: Value) throws(Unsupported) -> Value? {
            let raw: Any?
            switch frame {
            // Strings, integers, booleans and arrays have no labelled children in Mirror
            // (ReportRendererTests checks it): nothing is found in them.
            case .string, .int, .bool, .array: return nil
            case .parent(let p, _): raw = p.child(named: name)
            case .other(let o):
                guard let m = Mirror(reflecting: o).children.first(where: { $0.label == name }) else { return nil }
                let om = Mirror(reflecting: m.value)
                if om.displayStyle == .optional {
                    guard let first = om.children.first else { return nil }
                    raw = first.value
                } else {
                    raw = m.value
                }
            }
            guard let raw else { return nil }
            return try value(raw)
        }

        /// `name` looked up on the stack (innermost frame last) as swift-mustache's `getChild` does.
        mutating func lookup(_ name: Name) throws(Unsupported) -> Value? {
            guard let first = name.parts.first else { return stack.last }
            var i = stack.count - 1
            while i >= 0 {
                if var v = try child(first, of: stack[i]) {
                    // The rest from that value only: a missing part is nil, not looked up further out.
                    for part in name.parts.dropFirst() {
                        guard let next = try child(part, of: v) else { return nil }
                        v = next
                    }
                    return v
                }
                i -= 1
            }
            return nil
        }

        mutating func render(_ nodes: [Node]) throws(Unsupported) {
            for node in nodes {
                switch node {
                case .text(let t):
                    out.append(contentsOf: t)
                case .variable(let name):
                    guard let v = try lookup(name) else { continue }
                    switch v {
                    case .string(let s): write(s)
                    case .int(let i): write(String(i))
                    case .bool(let b): out.append(contentsOf: b ? ReportRenderer.trueBytes : ReportRenderer.falseBytes)
                    default: write(String(describing: v.any))
                    }
                case .section(let name, let body):
                    // swift-mustache's renderSection: sequences per element, Bool without a frame,
                    // any other value (also "" and 0) as a frame, nil nothing.
                    guard let v = try lookup(name) else { continue }
                    switch v {
                    case .array(let a, _):
                        var failed = false
                        a.forEachElement { e in
                            guard !failed else { return }
                            do {
                                guard let ev = try value(e) else { throw Unsupported() }
                                stack.append(ev)
                                try render(body)
                                stack.removeLast()
                            } catch {
                                failed = true
                            }
                        }
                        if failed { throw Unsupported() }
                    case .bool(let b):
                        if b { try render(body) }
                    default:
                        stack.append(v)
                        try render(body)
                        stack.removeLast()
                    }
                case .inverted(let name, let body):
                    // renderInvertedSection: an empty sequence renders with itself as the frame.
                    switch try lookup(name) {
                    case .none:
                        try render(body)
                    case .array(let a, let any)?:
                        if a.isEmptySequence {
                            stack.append(.array(a, any))
                            try render(body)
                            stack.removeLast()
                        }
                    case .bool(let b)?:
                        if !b { try render(body) }
                    case .some:
                        continue
                    }
                }
            }
        }

        /// `s` escaped as ``ReportTemplates/ByteHTMLEscaping`` does it, or as it is (text).
        @inline(__always)
        mutating func write(_ s: String) {
            switch escaping {
            case .text:
                out.append(contentsOf: s.utf8)
            case .html:
                var s = s
                s.withUTF8 { b in
                    var start = 0
                    for i in 0..<b.count {
                        let rep: StaticString
                        switch b[i] {
                        case 0x3C: rep = "&lt;"
                        case 0x3E: rep = "&gt;"
                        case 0x26: rep = "&amp;"
                        case 0x22: rep = "&quot;"
                        case 0x27: rep = "&#39;"
                        default: continue
                        }
                        out.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<i]))
                        out.append(
                            contentsOf: UnsafeBufferPointer(start: rep.utf8Start, count: rep.utf8CodeUnitCount))
                        start = i + 1
                    }
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<b.count]))
                }
            }
        }
    }

    private static let trueBytes = Array("true".utf8)
    private static let falseBytes = Array("false".utf8)
}

/// An `Array` seen through `Any`, for sections over any element type without converting it to `[Any]`.
protocol ReportRenderSequence {
    /// Calls `body` with each element, in order.
    func forEachElement(_ body: (Any) -> Void)
    /// No elements.
    var isEmptySequence: Bool { get }
}

extension Array: ReportRenderSequence {
    func forEachElement(_ body: (Any) -> Void) { for e in self { body(e) } }
    var isEmptySequence: Bool { isEmpty }
}

/// An `Optional` seen through `Any` (swift-mustache pushes and prints those as they are: not handled).
protocol ReportRenderOptional {}
extension Optional: ReportRenderOptional {}
