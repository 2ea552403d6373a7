// The one JSON text helper for writers whose key order is part of their format (history.jsonl, JSON
// log lines): strings are escaped by Foundation's JSONSerialization, numbers are printed as Swift
// prints them (shortest round-trip form, always valid JSON), members stay in the order given.
import Foundation

public enum JSONText {
    /// `s` as a JSON string literal (quotes, backslashes and control characters escaped).
    public static func string(_ s: String) -> String {
        // Serialising a String fragment cannot fail; the fallback only keeps the function total.
        guard let data = try? JSONSerialization.data(withJSONObject: s, options: [.fragmentsAllowed, .withoutEscapingSlashes])
        else { return "\"\"" }
        return String(decoding: data, as: UTF8.self)
    }

    /// A finite number as Swift prints it (1.5, 1e-05, 0.0); nil or non-finite is `null`.
    public static func number(_ x: Double?) -> String {
        guard let x, x.isFinite else { return "null" }
        return "\(x)"
    }

    /// An object of members whose values are already JSON text, in the order given.
    public static func object(_ members: [(key: String, json: String)]) -> String {
        "{" + members.map { string($0.key) + ":" + $0.json }.joined(separator: ",") + "}"
    }

    /// An array of items that are already JSON text.
    public static func array(_ items: [String]) -> String {
        "[" + items.joined(separator: ",") + "]"
    }
}
