import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An OpenSSH allowed_signers file (ssh-keygen(1), ALLOWED SIGNERS), read the way `ssh-keygen -Y
/// verify` reads it: `principals [options] keytype base64 [comment]`, with principal patterns
/// (`*`, `?`, `!negation`), `namespaces="…"`, `valid-after="…"`, `valid-before="…"`
/// (YYYYMMDD[HHMM[SS]] in local time, or UTC with a `Z` suffix) and `cert-authority`.
///
/// Unlike ssh-keygen, which reports a bad line only when it reaches it, parsing refuses the whole
/// file on any malformed line. `cert-authority` lines are accepted but never match: dsar verifies
/// plain-key signatures only, and OpenSSH never matches a CA line against a plain key either.
package struct AllowedSigners: Sendable {
    package struct Entry: Sendable, Equatable {
        /// The comma-separated principal pattern list as written.
        package var principals: String
        package var certAuthority: Bool
        /// The comma-separated namespace pattern list, if restricted.
        package var namespaces: String?
        /// Seconds since the epoch.
        package var validAfter: UInt64?
        package var validBefore: UInt64?
        package var keyType: String
        package var keyBlob: [UInt8]
        /// 1-based line number.
        package var line: Int
    }

    package let entries: [Entry]
    package let path: String

    static let keyTypes: Set<String> = [
        "ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
        "sk-ecdsa-sha2-nistp256@openssh.com", "sk-ssh-ed25519@openssh.com", "ssh-ed448",
        "ssh-ed25519-cert-v01@openssh.com", "ssh-rsa-cert-v01@openssh.com", "ssh-dss-cert-v01@openssh.com",
        "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp384-cert-v01@openssh.com",
        "ecdsa-sha2-nistp521-cert-v01@openssh.com", "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "sk-ssh-ed25519-cert-v01@openssh.com",
    ]

    /// Parses the text of an allowed_signers file; `path` names it in errors.
    package init(parsing text: String, path: String) throws {
        self.path = path
        var entries: [Entry] = []
        let lines = Array(text.utf8).split(separator: 0x0A, omittingEmptySubsequences: false)
        for (i, raw) in lines.enumerated() {
            if let e = try Self.parseLine(Array(raw), number: i + 1, path: path) { entries.append(e) }
        }
        self.entries = entries
    }

    /// Reads and parses an allowed_signers file.
    package init(contentsOf path: String) throws {
        let bytes = try FileSystem.readFile(path, limit: 16 << 20)
        try self.init(parsing: String(decoding: bytes, as: UTF8.self), path: path)
    }

    /// The principal patterns of every entry that allows `keyBlob` for `namespace` at `at`.
    package func principals(for keyBlob: [UInt8], namespace: String, at: Date) -> [String] {
        var out: [String] = []
        for e in entries where !e.certAuthority && e.keyBlob == keyBlob {
            if Self.namespaceReason(e, namespace) != nil || Self.timeReason(e, at) != nil { continue }
            for p in e.principals.split(separator: ",") where !p.hasPrefix("!") && !out.contains(String(p)) {
                out.append(String(p))
            }
        }
        return out
    }

    /// Nil if `keyBlob` may sign for `principal` in `namespace` at `at`; otherwise why not.
    package func check(principal: String, keyBlob: [UInt8], namespace: String, at: Date) -> String? {
        let fp = SSHSig.fingerprint(of: keyBlob)
        var best: (rank: Int, reason: String) = (0, "\(path): no entry for principal \"\(principal)\"")
        func note(_ rank: Int, _ reason: String) {
            if rank > best.rank { best = (rank, reason) }
        }
        for e in entries {
            guard Self.matchPatternList(principal, e.principals) == 1 else { continue }
            if e.keyBlob != keyBlob {
                note(1, "\(path): key \(fp) is not listed for principal \"\(principal)\"")
                continue
            }
            if e.certAuthority {
                note(
                    2,
                    "\(path):\(e.line): the key is listed as a cert-authority, which dsar does not accept for plain signatures"
                )
                continue
            }
            if let why = Self.namespaceReason(e, namespace) {
                note(3, "\(path):\(e.line): \(why)")
                continue
            }
            if let why = Self.timeReason(e, at) {
                note(4, "\(path):\(e.line): \(why)")
                continue
            }
            return nil
        }
        return best.reason
    }

    static func namespaceReason(_ e: Entry, _ namespace: String) -> String? {
        guard let ns = e.namespaces else { return nil }
        if matchPatternList(namespace, ns) == 1 { return nil }
        return "key is not permitted for use in signature namespace \"\(namespace)\" (namespaces=\"\(ns)\")"
    }

    static func timeReason(_ e: Entry, _ at: Date) -> String? {
        let t = at.timeIntervalSince1970
        let now = t <= 0 ? UInt64(0) : UInt64(t)
        if let a = e.validAfter, now < a {
            return "key is not yet valid: verify time \(format(now)) < valid-after \(format(a))"
        }
        if let b = e.validBefore, now > b {
            return "key has expired: verify time \(format(now)) > valid-before \(format(b))"
        }
        return nil
    }

    static func format(_ t: UInt64) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date(timeIntervalSince1970: Double(t)))
    }

    // MARK: line parsing (sshsig.c: parse_principals_key_and_options, sshsigopt_parse)

    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0A }

    static func parseLine(_ line: [UInt8], number: Int, path: String) throws -> Entry? {
        func bad(_ why: String) -> DSARError {
            DSARError(.config, "\(path):\(number): \(why)", path: path)
        }
        var i = 0
        while i < line.count && isSpace(line[i]) { i += 1 }
        if i == line.count || line[i] == 0x23 { return nil }  // blank or comment

        // Principals: one whitespace-delimited token; a double-quoted part may contain spaces.
        var principals: [UInt8] = []
        var sawDelimiter = false
        while i < line.count {
            let c = line[i]
            if c == 0x22 {
                guard let close = line[(i + 1)...].firstIndex(of: 0x22) else {
                    throw bad("unterminated quote in principals")
                }
                principals.append(contentsOf: line[(i + 1)..<close])
                i = close + 1
                sawDelimiter = true
                break
            }
            if isSpace(c) {
                sawDelimiter = true
                break
            }
            principals.append(c)
            i += 1
        }
        guard sawDelimiter, !principals.isEmpty else {
            throw bad("invalid line: expected principals, options and a key")
        }
        while i < line.count && isSpace(line[i]) { i += 1 }
        guard i < line.count else { throw bad("invalid line: missing key") }

        var options: [UInt8]? = nil
        var key = try? readKey(line, &i)
        if key == nil {
            // Options: up to the first unquoted space or tab.
            let start = i
            var quoted = false
            while i < line.count && (quoted || (line[i] != 0x20 && line[i] != 0x09)) {
                if line[i] == 0x5C && i + 1 < line.count && line[i + 1] == 0x22 {
                    i += 1
                } else if line[i] == 0x22 {
                    quoted.toggle()
                }
                i += 1
            }
            if quoted { throw bad("invalid options: unterminated quote") }
            options = Array(line[start..<i])
            while i < line.count && isSpace(line[i]) { i += 1 }
            guard i < line.count else { throw bad("missing key") }
            do {
                key = try readKey(line, &i)
            } catch let e as DSARError {
                throw bad("invalid key: \(e.message)")
            }
        }
        var entry = Entry(
            principals: String(decoding: principals, as: UTF8.self), certAuthority: false, namespaces: nil,
            validAfter: nil, validBefore: nil, keyType: key!.type, keyBlob: key!.blob, line: number)
        if let options {
            do {
                try parseOptions(options, into: &entry)
            } catch let e as DSARError {
                throw bad("bad options: \(e.message)")
            }
        }
        return entry
    }

    /// `keytype base64`, advancing past it (a trailing comment is ignored).
    static func readKey(_ line: [UInt8], _ i: inout Int) throws -> (type: String, blob: [UInt8]) {
        var j = i
        while j < line.count && !isSpace(line[j]) { j += 1 }
        let type = String(decoding: line[i..<j], as: UTF8.self)
        guard keyTypes.contains(type) else { throw DSARError(.config, "unknown key type \"\(type)\"") }
        while j < line.count && (line[j] == 0x20 || line[j] == 0x09) { j += 1 }
        var k = j
        while k < line.count && !isSpace(line[k]) { k += 1 }
        guard k > j, let blob = CryptoBase64.decodePadded(line[j..<k]) else {
            throw DSARError(.config, "malformed base64 key")
        }
        var r = SSHWireReader(blob)
        guard let inner = try? r.text(), inner == type else {
            throw DSARError(.config, "the key blob is not a \(type) key")
        }
        i = k
        return (type, blob)
    }

    static func parseOptions(_ opts: [UInt8], into e: inout Entry) throws {
        var i = 0
        func fail(_ why: String) -> DSARError { DSARError(.config, why) }
        func matches(_ name: String) -> Bool {
            let n = Array(name.utf8)
            guard i + n.count <= opts.count else { return false }
            for k in 0..<n.count where lower(opts[i + k]) != n[k] { return false }
            return true
        }
        func dequote() throws -> String {
            guard i < opts.count, opts[i] == 0x22 else { throw fail("missing start quote") }
            i += 1
            var out: [UInt8] = []
            while i < opts.count && opts[i] != 0x22 {
                if opts[i] == 0x5C && i + 1 < opts.count && opts[i + 1] == 0x22 { i += 1 }
                out.append(opts[i])
                i += 1
            }
            guard i < opts.count else { throw fail("missing end quote") }
            i += 1
            return String(decoding: out, as: UTF8.self)
        }
        var seenNamespaces = false
        while i < opts.count {
            if matches("cert-authority") {
                i += 14
                e.certAuthority = true
            } else if matches("namespaces=") {
                i += 11
                if seenNamespaces { throw fail("multiple \"namespaces\" clauses") }
                seenNamespaces = true
                e.namespaces = try dequote()
            } else if matches("valid-after=") {
                i += 12
                if e.validAfter != nil { throw fail("multiple \"valid-after\" clauses") }
                guard let t = parseTime(try dequote()), t != 0 else { throw fail("invalid \"valid-after\" time") }
                e.validAfter = t
            } else if matches("valid-before=") {
                i += 13
                if e.validBefore != nil { throw fail("multiple \"valid-before\" clauses") }
                guard let t = parseTime(try dequote()), t != 0 else { throw fail("invalid \"valid-before\" time") }
                e.validBefore = t
            } else {
                throw fail("unknown key option")
            }
            if i == opts.count { break }
            guard opts[i] == 0x2C else { throw fail("unknown key option") }
            i += 1
            if i == opts.count { throw fail("unexpected end-of-options") }
        }
        if let a = e.validAfter, let b = e.validBefore, b <= a {
            throw fail("\"valid-before\" time is before \"valid-after\"")
        }
    }

    static func lower(_ c: UInt8) -> UInt8 { (0x41...0x5A).contains(c) ? c + 32 : c }

    /// YYYYMMDD[HHMM[SS]], local time unless suffixed with `Z` (or `UTC`), as OpenSSH's
    /// parse_absolute_time. Seconds since the epoch; nil if malformed.
    static func parseTime(_ s: String) -> UInt64? {
        var b = Array(s.utf8)
        var utc = false
        if b.count > 1, lower(b[b.count - 1]) == 0x7A {
            utc = true
            b.removeLast()
        } else if b.count > 3, b.suffix(3).map(lower) == Array("utc".utf8) {
            utc = true
            b.removeLast(3)
        }
        guard [8, 12, 14].contains(b.count), b.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        func num(_ r: Range<Int>) -> Int32 { b[r].reduce(0) { $0 * 10 + Int32($1 - 0x30) } }
        var tm = tm()
        tm.tm_year = num(0..<4) - 1900
        tm.tm_mon = num(4..<6) - 1
        tm.tm_mday = num(6..<8)
        if b.count >= 12 {
            tm.tm_hour = num(8..<10)
            tm.tm_min = num(10..<12)
        }
        if b.count == 14 { tm.tm_sec = num(12..<14) }
        guard (0...11).contains(tm.tm_mon), (1...31).contains(tm.tm_mday), (0...23).contains(tm.tm_hour),
            (0...59).contains(tm.tm_min), (0...61).contains(tm.tm_sec)
        else { return nil }
        let t = utc ? timegm(&tm) : mktime(&tm)
        return t < 0 ? nil : UInt64(t)
    }

    // MARK: patterns (OpenSSH match.c semantics)

    /// `*` and `?` wildcard match, case-sensitive.
    static func matchPattern(_ s: [UInt8], _ p: [UInt8]) -> Bool {
        var si = 0
        var pi = 0
        var starP = -1
        var starS = 0
        while si < s.count {
            if pi < p.count && (p[pi] == 0x3F || p[pi] == s[si]) {
                si += 1
                pi += 1
            } else if pi < p.count && p[pi] == 0x2A {
                starP = pi
                starS = si
                pi += 1
            } else if starP >= 0 {
                pi = starP + 1
                starS += 1
                si = starS
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == 0x2A { pi += 1 }
        return pi == p.count
    }

    /// 1 if a positive pattern in the comma-separated list matches and no negated one does,
    /// -1 if a negated (`!`) pattern matches, 0 otherwise.
    static func matchPatternList(_ string: String, _ list: String) -> Int {
        let s = Array(string.utf8)
        var positive = false
        for sub in Array(list.utf8).split(separator: 0x2C, omittingEmptySubsequences: false) {
            var pat = Array(sub)
            var negated = false
            if pat.first == 0x21 {
                negated = true
                pat.removeFirst()
            }
            if pat.count >= 1023 { return 0 }
            if matchPattern(s, pat) {
                if negated { return -1 }
                positive = true
            }
        }
        return positive ? 1 : 0
    }
}
