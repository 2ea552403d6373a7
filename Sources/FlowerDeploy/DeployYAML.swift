// Kubernetes objects as ordered YAML values, emitted with Yams: block mappings in insertion order,
// block sequences, and strings quoted whenever a YAML 1.1 reader could take them for anything but a
// string (so a ConfigMap value "10" or "true" stays a string: Kubernetes rejects numbers there).
import Yams

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

    /// The document as YAML text ending in a newline, emitted by Yams (libyaml): block style, keys in
    /// insertion order, no line folding.
    public func rendered() throws -> String {
        try Yams.serialize(node: node, width: -1, allowUnicode: true)
    }

    /// The value as a Yams node. Strings are plain only when a YAML 1.1 reader reads them back as the
    /// same string (see `isPlainSafe`), double-quoted otherwise; empty collections are written `[]`/`{}`.
    var node: Node {
        switch self {
        case let .string(s): return .scalar(.init(s, .implicit, isPlainSafe(s) ? .plain : .doubleQuoted))
        case let .int(i): return .scalar(.init(String(i), .implicit, .plain))
        case let .double(d): return d.isFinite ? .scalar(.init("\(d)", .implicit, .plain)) : .scalar(.init("\(d)", .implicit, .doubleQuoted))
        case let .bool(b): return .scalar(.init(b ? "true" : "false", .implicit, .plain))
        case let .list(items): return .sequence(.init(items.map(\.node), .implicit, items.isEmpty ? .flow : .block))
        case let .map(pairs):
            return .mapping(.init(pairs.map { (YAMLValue.string($0.0).node, $0.1.node) }, .implicit, pairs.isEmpty ? .flow : .block))
        }
    }
}

private let reservedWords: Set<String> = [
    "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", "+.inf", ".nan",
]

/// Whether `s` may be written as a plain scalar: a YAML 1.1 reader (Kubernetes' among them) reads it
/// back as this same string, not as a number, boolean, null, date or structure. Anything that starts
/// like a number is quoted rather than second-guessed.
func isPlainSafe(_ s: String) -> Bool {
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
