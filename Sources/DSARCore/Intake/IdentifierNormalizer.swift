import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Normalises identifier values per type so that the same person always yields the same value.
package enum IdentifierNormalizer {
    /// Identifier types with built-in normalisation; any other well-formed name is a custom type.
    package static let builtInTypes: Set<String> = ["email", "user_id", "phone", "ip"]

    /// Whether `name` is an acceptable identifier type name (`[a-z][a-z0-9_]{0,31}`).
    package static func isValidTypeName(_ name: String) -> Bool {
        let b = Array(name.utf8)
        guard let first = b.first, b.count <= 32, first >= 0x61 && first <= 0x7A else { return false }
        return b.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
    }

    /// The normalised value, or a sentence saying why `raw` is not a valid identifier of that type.
    package static func normalize(type: String, _ raw: String) -> Result<String, NormalizationError> {
        let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return .failure(NormalizationError("is empty")) }
        if trimmed.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return .failure(NormalizationError("contains a control character"))
        }
        if trimmed.utf8.count > 512 { return .failure(NormalizationError("is longer than 512 bytes")) }
        switch type {
        case "email": return email(trimmed)
        case "phone": return phone(trimmed)
        case "ip": return ip(trimmed)
        default: return .success(trimmed)
        }
    }

    /// Why a value was refused.
    package struct NormalizationError: Error, Sendable, CustomStringConvertible {
        package var reason: String
        init(_ reason: String) { self.reason = reason }
        package var description: String { reason }
    }

    static func email(_ s: String) -> Result<String, NormalizationError> {
        let lower = s.lowercased()
        let parts = lower.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            return .failure(
                NormalizationError("is not an email address (expected exactly one '@' with text on both sides)"))
        }
        if lower.contains(where: { $0 == " " || $0 == "\t" || $0 == "," || $0 == ";" || $0 == "<" || $0 == ">" }) {
            return .failure(NormalizationError("is not an email address (contains a space or one of , ; < >)"))
        }
        guard parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix(".") else {
            return .failure(NormalizationError("is not an email address (the domain needs a dot, not at either end)"))
        }
        return .success(lower)
    }

    static func phone(_ s: String) -> Result<String, NormalizationError> {
        var digits = ""
        var plus = false
        let chars = Array(s)
        // An international number may carry the national trunk prefix as "(0)" after the country
        // code (+49 (0)170 1234567): it is not dialled, so it is not part of the number.
        let international = chars.first == "+" || chars.drop { $0 == " " }.starts(with: ["0", "0"])
        var skip = 0
        for (k, c) in chars.enumerated() {
            if skip > 0 {
                skip -= 1
                continue
            }
            if international && c == "(" && k + 2 < chars.count && chars[k + 1] == "0" && chars[k + 2] == ")" {
                skip = 2
            } else if c.isASCII, let d = c.wholeNumberValue {
                digits.append(Character(String(d)))
            } else if c == "+" && k == 0 {
                plus = true
            } else if " -./()".contains(c) {
                continue
            } else {
                return .failure(NormalizationError("is not a phone number (unexpected character '\(c)')"))
            }
        }
        if !plus && digits.hasPrefix("00") && digits.count > 4 {
            plus = true
            digits.removeFirst(2)
        }
        guard digits.count >= 5, digits.count <= 17 else {
            return .failure(NormalizationError("is not a phone number (expected 5 to 17 digits)"))
        }
        return .success((plus ? "+" : "") + digits)
    }

    static func ip(_ s: String) -> Result<String, NormalizationError> {
        var v4 = in_addr()
        if inet_pton(AF_INET, s, &v4) == 1 {
            var buf = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            inet_ntop(AF_INET, &v4, &buf, socklen_t(buf.count))
            return .success(String(cString: buf))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, s, &v6) == 1 {
            var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            inet_ntop(AF_INET6, &v6, &buf, socklen_t(buf.count))
            return .success(String(cString: buf))
        }
        return .failure(NormalizationError("is not an IPv4 or IPv6 address"))
    }
}
