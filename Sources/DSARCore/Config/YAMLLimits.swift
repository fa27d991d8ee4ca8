import CYaml
import Foundation

/// Checks a configuration file's YAML event stream before any tree is built, so that hostile or
/// broken input is reported (with its line) instead of hanging or flooding the output:
///
/// - an alias (`*x`) or a list or mapping used as a mapping key (config keys are text; a composite
///   key is also what makes hashing and printing an alias bomb exponential),
/// - aliases expanding the document far beyond its own size (an alias bomb): the expanded node count
///   may be at most ``nodeBudget`` or ``aliasFactor`` times the document's own node count,
/// - a key that occurs twice in one mapping (the second occurrence's line, naming the first's),
/// - a second document (`---`) in the file: a config file holds one document,
/// - an undefined alias and syntax errors.
///
/// One linear pass over libyaml's events (the nodes are counted, never expanded).
package enum YAMLLimits {
    /// Expanded nodes always allowed, however small the document.
    package static let nodeBudget = 100_000
    /// Expanded nodes allowed per node the document holds itself.
    package static let aliasFactor = 10
    /// Most problems listed for one file (a file of 100,000 duplicated keys is one screen, not 100,000 lines).
    package static let maxProblems = 100
    /// Longest key printed in a message (longer ones are shortened with `…`).
    package static let maxKeyLength = 80

    /// A key as printed in a message: at most ``maxKeyLength`` characters (else cut, ending in `…`),
    /// control characters escaped (a key can never break the `file:line: key: message` line).
    package static func printable(_ key: String) -> String {
        var out = ""
        var n = 0
        for u in key.unicodeScalars {
            if n == maxKeyLength - 1 {
                out.append("…")
                return out
            }
            if u.value < 0x20 || u.value == 0x7F {
                out += u.escaped(asASCII: true)
            } else {
                out.unicodeScalars.append(u)
            }
            n += 1
        }
        return out
    }

    /// The problems of `bytes` (UTF-8 YAML) read as `file`; empty when the file may be composed.
    package static func check(_ bytes: UnsafeBufferPointer<UInt8>, file: String) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        var dropped = 0
        func add(_ line: Int, _ key: String, _ message: String) {
            if problems.count < maxProblems {
                problems.append(ConfigProblem(file: file, line: line, key: key, message: message))
            } else {
                dropped += 1
            }
        }
        guard let base = bytes.baseAddress, bytes.count > 0 else { return [] }

        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            return [ConfigProblem(file: file, line: 0, key: "-", message: "out of memory starting the YAML parser")]
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, base, bytes.count)

        struct Frame {
            var isMap: Bool
            /// A mapping whose next node is a key.
            var keyNext = true
            /// First line of every key seen in this mapping.
            var keys: [String: Int] = [:]
            /// `expanded` when the collection started.
            var start: Int
            var anchor: String?
        }
        let cap = Int.max / 4
        var stack: [Frame] = []
        var sizes: [String: Int] = [:]  // anchor -> expanded node count of the anchored node
        var expanded = 0  // nodes with every alias expanded (saturating at `cap`)
        var own = 0  // nodes written out in the file
        var biggest: (size: Int, line: Int, name: String)?
        var documents = 0

        func anchorName(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            p.map { String(cString: $0) }
        }
        /// Called at the start of every node: the key checks when it is in key position.
        func enter(line: Int, describe: () -> String?) {
            guard !stack.isEmpty, stack[stack.count - 1].isMap, stack[stack.count - 1].keyNext else { return }
            if let m = describe() { add(line, "-", m) }
        }
        /// Called when a node is complete: the parent mapping alternates key and value.
        func leave() {
            guard !stack.isEmpty, stack[stack.count - 1].isMap else { return }
            stack[stack.count - 1].keyNext.toggle()
        }

        var event = yaml_event_t()
        loop: while true {
            guard yaml_parser_parse(&parser, &event) == 1 else {
                let problem = parser.problem.map { String(cString: $0) } ?? "unreadable YAML"
                let context = parser.context.map { " " + String(cString: $0) } ?? ""
                var errorLine = Int(parser.problem_mark.line) + 1
                if parser.error == YAML_READER_ERROR {
                    // libyaml gives a byte offset (no mark) for bad characters such as NUL.
                    let end = min(max(Int(parser.problem_offset), 0), bytes.count)
                    errorLine = 1 + bytes[..<end].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
                }
                add(errorLine, "-", "YAML syntax error: \(problem)\(context)")
                break
            }
            defer { yaml_event_delete(&event) }
            let line = Int(event.start_mark.line) + 1
            switch event.type {
            case YAML_STREAM_END_EVENT:
                break loop
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 {
                    add(
                        line, "-",
                        "a second YAML document starts here; a config file holds one document (remove the `---` line, or move what follows it to a file of its own)"
                    )
                    break loop
                }
            case YAML_SCALAR_EVENT:
                own += 1
                expanded = min(expanded + 1, cap)
                if let a = anchorName(event.data.scalar.anchor) { sizes[a] = 1 }
                // Index the frame (never bind a copy of it: that would copy its key table per key).
                if !stack.isEmpty, stack[stack.count - 1].isMap, stack[stack.count - 1].keyNext {
                    let key = String(
                        decoding: UnsafeBufferPointer(start: event.data.scalar.value, count: event.data.scalar.length),
                        as: UTF8.self)
                    if let first = stack[stack.count - 1].keys[key] {
                        add(
                            line, printable(key),
                            "duplicate key (first at line \(first)); a key may appear once in a mapping")
                    } else {
                        stack[stack.count - 1].keys[key] = line
                    }
                }
                leave()
            case YAML_ALIAS_EVENT:
                let name = anchorName(event.data.alias.anchor) ?? ""
                enter(line: line) {
                    "an alias (*\(printable(name))) cannot be a key; write the key as text"
                }
                guard let size = sizes[name] else {
                    add(
                        line, "-",
                        "the alias *\(printable(name)) names no anchor (&\(printable(name))) defined before it")
                    leave()
                    continue
                }
                expanded = min(expanded + size, cap)
                if size > (biggest?.size ?? 0) { biggest = (size, line, name) }
                leave()
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                let isMap = event.type == YAML_MAPPING_START_EVENT
                enter(line: line) {
                    "a key must be text, not a \(isMap ? "mapping" : "list")"
                }
                own += 1
                expanded = min(expanded + 1, cap)
                let anchor =
                    isMap ? anchorName(event.data.mapping_start.anchor) : anchorName(event.data.sequence_start.anchor)
                stack.append(Frame(isMap: isMap, start: expanded, anchor: anchor))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let f = stack.popLast() else { continue }
                if let a = f.anchor { sizes[a] = min(expanded - f.start + 1, cap) }
                leave()
            default:
                continue
            }
        }
        let limit = max(nodeBudget, aliasFactor * own)
        if expanded > limit {
            let where_ =
                biggest.map {
                    "; the largest alias, *\(printable($0.name)) on line \($0.line), alone stands for \($0.size >= cap ? "billions of" : "\($0.size)") nodes"
                } ?? ""
            add(
                biggest?.line ?? 1, "-",
                "too many aliases (alias bomb?): they expand the document to \(expanded >= cap ? "billions of" : "\(expanded)") nodes, more than \(limit) (at most \(nodeBudget) or \(aliasFactor) times the \(own) nodes it holds)\(where_)"
            )
        }
        if dropped > 0 {
            problems.append(
                ConfigProblem(
                    file: file, line: 0, key: "-",
                    message: "\(dropped) more problems not listed (the first \(maxProblems) are shown)"))
        }
        return problems
    }
}
