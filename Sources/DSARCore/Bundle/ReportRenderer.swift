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

    /// `v` cast once, or nil when swift-mustache would treat it in a way this renderer does not.
    static func value(_ v: Any) -> Value? {
        // Exact types first (a metadata compare): `as?` alone would also unwrap an Optional or bridge.
        let t = type(of: v)
        if t == String.self { return .string(v as! String) }
        if t == Int.self { return .int(v as! Int) }
        if t == Bool.self { return .bool(v as! Bool) }
        if v is any ReportRenderOptional || v is String || v is Int || v is Bool || v is MustacheLambda
            || v is MustacheTemplate
            || v is any MustacheCustomRenderable || v is any MustacheCustomRepresentation
        {
            return nil
        }
        if let a = v as? any ReportRenderSequence { return .array(a, v) }
        if v is any MustacheSequence { return nil }
        if let p = v as? any MustacheParent { return .parent(p, v) }
        return .other(v)
    }

    /// Why a render gave up.
    struct Unsupported: Error {}

    /// The child `name` of frame `frame`, as swift-mustache's `_getImmediateChild` finds it.
    @inline(__always)
    private static func child(_ name: String, of frame: Value) throws(Unsupported) -> Value? {
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
        guard let v = value(raw) else { throw Unsupported() }
        return v
    }

    /// `name` looked up on `stack` (innermost frame last) as swift-mustache's `getChild` does.
    private static func lookup(_ name: Name, _ stack: [Value]) throws(Unsupported) -> Value? {
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

    // MARK: Rendering

    /// `model` rendered, or nil when it holds a value this renderer does not handle as swift-mustache
    /// does (then render with swift-mustache).
    func render(_ model: Any) -> [UInt8]? {
        guard let root = Self.value(model) else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(textBytes * 2 + 4096)
        var stack: [Value] = [root]
        stack.reserveCapacity(8)
        do {
            try render(nodes, &stack, &out)
        } catch {
            return nil
        }
        return out
    }

    private func render(_ nodes: [Node], _ stack: inout [Value], _ out: inout [UInt8]) throws(Unsupported) {
        for node in nodes {
            switch node {
            case .text(let t):
                out.append(contentsOf: t)
            case .variable(let name):
                guard let v = try Self.lookup(name, stack) else { continue }
                switch v {
                case .string(let s): write(s, &out)
                case .int(let i): write(String(i), &out)
                case .bool(let b): out.append(contentsOf: b ? Self.trueBytes : Self.falseBytes)
                default: write(String(describing: v.any), &out)
                }
            case .section(let name, let body):
                // swift-mustache's renderSection: sequences per element, Bool without a frame,
                // any other value (also "" and 0) as a frame, nil nothing.
                guard let v = try Self.lookup(name, stack) else { continue }
                switch v {
                case .array(let a, _):
                    var failed = false
                    a.forEachElement { e in
                        guard !failed, let ev = Self.value(e) else {
                            failed = true
                            return
                        }
                        stack.append(ev)
                        do { try render(body, &stack, &out) } catch { failed = true }
                        stack.removeLast()
                    }
                    if failed { throw Unsupported() }
                case .bool(let b):
                    if b { try render(body, &stack, &out) }
                default:
                    stack.append(v)
                    try render(body, &stack, &out)
                    stack.removeLast()
                }
            case .inverted(let name, let body):
                // renderInvertedSection: an empty sequence renders with itself as the frame.
                switch try Self.lookup(name, stack) {
                case .none:
                    try render(body, &stack, &out)
                case .array(let a, let any)?:
                    if a.isEmptySequence {
                        stack.append(.array(a, any))
                        try render(body, &stack, &out)
                        stack.removeLast()
                    }
                case .bool(let b)?:
                    if !b { try render(body, &stack, &out) }
                case .some:
                    continue
                }
            }
        }
    }

    private static let trueBytes = Array("true".utf8)
    private static let falseBytes = Array("false".utf8)

    /// `s` escaped as ``ReportTemplates/ByteHTMLEscaping`` does it, or as it is (text).
    @inline(__always)
    private func write(_ s: String, _ out: inout [UInt8]) {
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
                    out.append(contentsOf: UnsafeBufferPointer(start: rep.utf8Start, count: rep.utf8CodeUnitCount))
                    start = i + 1
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<b.count]))
            }
        }
    }
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
