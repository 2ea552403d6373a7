// A small, deterministic YAML writer for Kubernetes objects: block mappings in insertion order,
// block sequences, and strings quoted whenever a YAML 1.1 reader could take them for anything but a
// string (so a ConfigMap value "10" or "true" stays a string: Kubernetes rejects numbers there).

/// A YAML value with ordered mappings.
public indirect enum YAMLValue: Equatable, Sendable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case list([YAMLValue])
    case map([(String, YAMLValue)])

    public static func == (lhs: YAMLValue, rhs: YAMLValue) -> Bool {
        switch (lhs, rhs) {
        case let (.string(a), .string(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.bool(a), .bool(b)): return a == b
        case let (.list(a), .list(b)): return a == b
        case let (.map(a), .map(b)): return a.map(\.0) == b.map(\.0) && a.map(\.1) == b.map(\.1)
        default: return false
        }
    }

    /// The value under `key` of a mapping, nil otherwise.
    public subscript(key: String) -> YAMLValue? {
        guard case let .map(pairs) = self else { return nil }
        return pairs.first { $0.0 == key }?.1
    }

    /// The document as YAML text ending in a newline.
    public func rendered() -> String {
        var out = ""
        switch self {
        case .map(let pairs) where !pairs.isEmpty: writeMap(pairs, indent: 0, into: &out)
        case .list(let items) where !items.isEmpty: writeList(items, indent: 0, into: &out)
        default: out = inline + "\n"
        }
        return out
    }

    /// The scalar (or empty collection) written on one line.
    private var inline: String {
        switch self {
        case let .string(s): return yamlQuoted(s)
        case let .int(i): return String(i)
        case let .double(d): return d.isFinite ? "\(d)" : yamlQuoted("\(d)")
        case let .bool(b): return b ? "true" : "false"
        case let .list(items): return items.isEmpty ? "[]" : ""
        case let .map(pairs): return pairs.isEmpty ? "{}" : ""
        }
    }

    private var isBlock: Bool {
        switch self {
        case let .list(items): return !items.isEmpty
        case let .map(pairs): return !pairs.isEmpty
        default: return false
        }
    }

    private func writeMap(_ pairs: [(String, YAMLValue)], indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        for (key, value) in pairs {
            out += pad + yamlQuoted(key) + ":"
            switch value {
            case let .map(inner) where !inner.isEmpty:
                out += "\n"
                value.writeMap(inner, indent: indent + 2, into: &out)
            case let .list(items) where !items.isEmpty:
                out += "\n"
                value.writeList(items, indent: indent, into: &out)  // Kubernetes style: "- " at the key's indent
            default:
                out += " " + value.inline + "\n"
            }
        }
    }

    private func writeList(_ items: [YAMLValue], indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        for item in items {
            switch item {
            case let .map(inner) where !inner.isEmpty:
                // First pair on the dash line, the rest aligned under it.
                var block = ""
                item.writeMap(inner, indent: indent + 2, into: &block)
                out += pad + "- " + block.dropFirst(indent + 2)
            case let .list(inner) where !inner.isEmpty:
                out += pad + "-\n"
                item.writeList(inner, indent: indent + 2, into: &out)
            default:
                out += pad + "- " + item.inline + "\n"
            }
        }
    }
}

/// `s` as a YAML scalar: plain when a YAML 1.1 reader reads it back as this same string,
/// double-quoted (JSON escapes) otherwise.
func yamlQuoted(_ s: String) -> String {
    if isPlainSafe(s) { return s }
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\x" + String(scalar.value, radix: 16).leftPadded(to: 2)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

private let reservedWords: Set<String> = [
    "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", "+.inf", ".nan",
]

private func isPlainSafe(_ s: String) -> Bool {
    guard let first = s.unicodeScalars.first, let last = s.unicodeScalars.last else { return false }
    if reservedWords.contains(s.lowercased()) { return false }
    // Anything that starts like a number (or a sexagesimal/date) is quoted rather than second-guessed.
    if first.properties.numericType != nil || "+-.".unicodeScalars.contains(first) && s.count > 1 && {
        let second = s.unicodeScalars[s.unicodeScalars.index(after: s.unicodeScalars.startIndex)]
        return second.properties.numericType != nil || second == "."
    }() { return false }
    if "?:,[]{}#&*!|>'\"%@`".unicodeScalars.contains(first) { return false }
    if first == "-" && (s.count == 1 || s.hasPrefix("- ") || s.hasPrefix("---")) { return false }
    if first == " " || last == " " || last == ":" { return false }
    for scalar in s.unicodeScalars {
        if scalar.value < 0x20 || scalar.value == 0x7F || scalar.value > 0x7E { return false }
    }
    return !s.contains(": ") && !s.contains(" #")
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
