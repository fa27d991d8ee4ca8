import Foundation
import Yams

/// One problem in a configuration file, printed as `file:line: key: what is wrong`.
package struct ConfigProblem: Error, Sendable, CustomStringConvertible, Equatable {
    package var file: String
    package var line: Int
    package var key: String
    package var message: String

    package init(file: String, line: Int, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    package var description: String { line > 0 ? "\(file):\(line): \(key): \(message)" : "\(file): \(key): \(message)" }
}

/// Several configuration problems at once (all of a file are reported, not just the first).
package struct ConfigProblems: Error, Sendable, CustomStringConvertible {
    package var problems: [ConfigProblem]
    package init(_ problems: [ConfigProblem]) { self.problems = problems }
    package var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// A YAML mapping read with line numbers, collecting every problem instead of stopping at the first.
package final class YAMLMap {
    /// The file it came from (for messages).
    package let file: String
    /// Dotted path of this mapping inside the file (empty at the top).
    package let path: String
    let line: Int
    let pairs: [(key: String, keyLine: Int, value: Node)]
    /// Position in `pairs` of each key (its first occurrence): lookups are O(1), so a mapping of
    /// 60,000 tables is read in linear time.
    private let index: [String: Int]
    let sink: ProblemSink
    private var used = Set<String>()
    /// Identifier types a config may name (nil: any well-formed name); set by the catalog.
    package var knownTypes: Set<String>?

    /// Why `type` may not be used here (nil: it may): not built in and not declared in `config.yaml`.
    package func unknownType(_ type: String) -> String? {
        guard let known = knownTypes, !known.contains(type) else { return nil }
        let hint = ConfigSuggest.didYouMean(type, among: known.sorted()).map { " (did you mean \"\($0)\"?)" } ?? ""
        return
            "\"\(type)\" is not a known identifier type\(hint); known: \(known.sorted().joined(separator: ", ")). Declare a custom type in config.yaml: identifier_types: [ \(type) ]"
    }

    final class ProblemSink {
        var problems: [ConfigProblem] = []
    }

    init(file: String, path: String, line: Int, pairs: [(String, Int, Node)], sink: ProblemSink) {
        self.file = file
        self.path = path
        self.line = line
        self.pairs = pairs.map { (key: $0.0, keyLine: $0.1, value: $0.2) }
        var index: [String: Int] = [:]
        index.reserveCapacity(pairs.count)
        for (i, p) in pairs.enumerated() where index[p.0] == nil { index[p.0] = i }
        self.index = index
        self.sink = sink
    }

    /// Largest configuration file read (4 MiB).
    package static let maxFileBytes = 4 << 20

    /// The pair of `key` (its first occurrence).
    private func pair(_ key: String) -> (key: String, keyLine: Int, value: Node)? { index[key].map { pairs[$0] } }

    /// Parses a YAML file whose top level must be a mapping. Every way the file cannot be read (a
    /// directory, a FIFO or device, no permission, larger than ``maxFileBytes``, not UTF-8) is thrown
    /// as one ``ConfigProblems`` naming the file, so a caller checking many files goes on with the others.
    package static func load(file: String) throws -> YAMLMap {
        let bytes = try readConfigFile(file, limit: maxFileBytes)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigProblems([ConfigProblem(file: file, line: 1, key: "-", message: "the file is not valid UTF-8")])
        }
        return try parse(text, file: file)
    }

    /// The bytes of a configuration file: a regular file of at most `limit` bytes (checked before
    /// reading; opened non-blocking, so a FIFO named `x.yaml` cannot hang the check).
    static func readConfigFile(_ file: String, limit: Int) throws -> [UInt8] {
        func fail(_ message: String) -> ConfigProblems {
            ConfigProblems([ConfigProblem(file: file, line: 0, key: "-", message: message)])
        }
        let fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        if fd < 0 {
            let why = String(cString: strerror(errno))
            throw fail(
                "cannot open the file: \(why)\(errno == EACCES ? " (the user running dsar needs read permission)" : "")"
            )
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw fail("cannot read the file's status: \(String(cString: strerror(errno)))")
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw fail("is a directory, not a YAML file (rename it, or move it out of this directory)")
        default: throw fail("is not a regular file (a FIFO, socket or device); a config must be a plain file")
        }
        let tooLarge = "is larger than \(limit >> 20) MiB (\(limit) bytes), the most a config file may be"
        if Int(st.st_size) > limit { throw fail("\(tooLarge): it has \(st.st_size) bytes") }
        do {
            return try FileSystem.readAll(fd: fd, path: file, limit: limit)
        } catch let e as DSARError {
            throw fail(e.code == .invalidInput ? "\(tooLarge) (it grew while being read)" : e.message)
        }
    }

    /// Parses YAML text whose top level must be a mapping. The text is first checked by
    /// ``YAMLLimits`` (aliases as keys, alias bombs, duplicate keys, a second document, syntax), so
    /// that composing it is linear and every problem has its line.
    package static func parse(_ text: String, file: String) throws -> YAMLMap {
        var text = text
        let limits = text.withUTF8 { YAMLLimits.check($0, file: file) }
        if !limits.isEmpty { throw ConfigProblems(limits) }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let e as YamlError {
            var line = 1
            var msg = "\(e)"
            switch e {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
                line = mark.line
                msg = "YAML syntax error: \(problem)"
            case .composer(_, let problem, let mark, _):
                line = mark.line
                msg = "YAML error: \(problem)"
            case .duplicatedKeysInMapping(let keys, let context):
                line = context.mark.line
                msg = "duplicate keys: \(keys.map(YAMLLimits.printable).joined(separator: ", "))"
            default: break
            }
            throw ConfigProblems([ConfigProblem(file: file, line: line, key: "-", message: msg)])
        }
        let sink = ProblemSink()
        guard let node else { return YAMLMap(file: file, path: "", line: 1, pairs: [], sink: sink) }
        guard let map = YAMLMap.from(node, file: file, path: "", sink: sink) else {
            throw ConfigProblems([
                ConfigProblem(
                    file: file, line: node.mark?.line ?? 1, key: "-",
                    message: "the top level must be a mapping of key: value")
            ])
        }
        return map
    }

    static func from(_ node: Node, file: String, path: String, sink: ProblemSink) -> YAMLMap? {
        guard let m = node.mapping else { return nil }
        var pairs: [(String, Int, Node)] = []
        for (k, v) in m {
            pairs.append((k.string ?? "-", k.mark?.line ?? 0, v))
        }
        return YAMLMap(file: file, path: path, line: node.mark?.line ?? 1, pairs: pairs, sink: sink)
    }

    /// The dotted path of `key` as printed (each key at most 80 characters, see ``YAMLLimits/printable(_:)``).
    private func qualified(_ key: String) -> String {
        let k = YAMLLimits.printable(key)
        return path.isEmpty ? k : "\(path).\(k)"
    }

    /// Records a problem at a key of this mapping.
    package func problem(_ key: String, _ message: String) {
        let line = pair(key)?.keyLine ?? self.line
        sink.problems.append(ConfigProblem(file: file, line: line, key: qualified(key), message: message))
    }

    /// Records a problem at this mapping itself.
    package func problemHere(_ message: String) {
        sink.problems.append(ConfigProblem(file: file, line: line, key: path.isEmpty ? "-" : path, message: message))
    }

    /// The keys in file order.
    package var keys: [String] { pairs.map(\.key) }

    /// The line a key is on (or this mapping's line).
    package func line(of key: String) -> Int { pair(key)?.keyLine ?? line }

    /// Whether the key is present.
    package func has(_ key: String) -> Bool { index[key] != nil }

    func node(_ key: String) -> Node? {
        used.insert(key)
        return pair(key)?.value
    }

    /// A string value; `required` records a problem when missing.
    package func string(_ key: String, required: Bool = false) -> String? {
        guard let n = node(key) else {
            if required { problemHere("\(qualified(key)) is missing") }
            return nil
        }
        guard n.scalar != nil, let s = n.string else {
            problem(key, "expected a text value")
            return nil
        }
        return s
    }

    /// A boolean value.
    package func bool(_ key: String) -> Bool? {
        guard let n = node(key) else { return nil }
        guard let b = n.bool else {
            problem(key, "expected true or false")
            return nil
        }
        return b
    }

    /// An integer value within a range.
    package func int(_ key: String, range: ClosedRange<Int>) -> Int? {
        guard let n = node(key) else { return nil }
        guard let i = n.int, range.contains(i) else {
            problem(key, "expected a whole number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return i
    }

    /// A number of seconds (integer or decimal) within a range.
    package func seconds(_ key: String, range: ClosedRange<Double>) -> Double? {
        guard let n = node(key) else { return nil }
        guard let d = n.float ?? n.int.map(Double.init), range.contains(d) else {
            problem(key, "expected a number of seconds from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return d
    }

    /// A list of strings; a single string is accepted as a list of one.
    package func strings(_ key: String, required: Bool = false) -> [String]? {
        guard let n = node(key) else {
            if required { problemHere("\(qualified(key)) is missing") }
            return nil
        }
        if n.scalar != nil, let s = n.string { return [s] }
        guard let seq = n.sequence else {
            problem(key, "expected a list of text values")
            return nil
        }
        var out: [String] = []
        for item in seq {
            guard item.scalar != nil, let s = item.string else {
                problem(key, "expected a list of text values")
                return nil
            }
            out.append(s)
        }
        return out
    }

    /// Whether the key holds a mapping (without recording a problem either way).
    package func isMap(_ key: String) -> Bool { pair(key)?.value.mapping != nil }

    /// Whether the key holds a single scalar (not a list or mapping).
    package func isScalar(_ key: String) -> Bool { pair(key)?.value.scalar != nil }

    /// A nested mapping.
    package func map(_ key: String, required: Bool = false) -> YAMLMap? {
        guard let n = node(key) else {
            if required { problemHere("\(qualified(key)) is missing") }
            return nil
        }
        guard let m = YAMLMap.from(n, file: file, path: qualified(key), sink: sink) else {
            problem(key, "expected a mapping of key: value")
            return nil
        }
        return m
    }

    /// A list of mappings.
    package func maps(_ key: String) -> [YAMLMap]? {
        guard let n = node(key) else { return nil }
        guard let seq = n.sequence else {
            problem(key, "expected a list")
            return nil
        }
        var out: [YAMLMap] = []
        for (k, item) in seq.enumerated() {
            guard let m = YAMLMap.from(item, file: file, path: qualified(key) + "[\(k)]", sink: sink) else {
                problem(key, "item \(k + 1) must be a mapping of key: value")
                continue
            }
            out.append(m)
        }
        return out
    }

    /// Records "unknown key" for every key not read so far, naming the allowed ones.
    package func rejectUnknownKeys(allowed: [String]) {
        let allowedSet = Set(allowed)
        for p in pairs where !used.contains(p.key) && !allowedSet.contains(p.key) {
            sink.problems.append(
                ConfigProblem(
                    file: file, line: p.keyLine, key: qualified(p.key),
                    message: "unknown key; expected one of: \(allowed.joined(separator: ", "))"))
        }
    }

    /// Every problem recorded in this file so far.
    package var problems: [ConfigProblem] { sink.problems }

    /// Throws all recorded problems, if any.
    package func throwIfProblems() throws {
        if !sink.problems.isEmpty { throw ConfigProblems(sink.problems) }
    }
}
