// How a split looks, as text: `flwr partition` prints one row per partition for a few partitions
// and a summary of the spreads for many (10⁵–10⁶ clients of a cross-device simulation).
import Foundation

/// min, median, mean and max of `values` (the median of an even count: the upper middle).
private func spread(_ values: [Double]) -> (min: Double, median: Double, mean: Double, max: Double) {
    let sorted = values.sorted()
    guard let first = sorted.first, let last = sorted.last else { return (0, 0, 0, 0) }
    return (first, sorted[sorted.count / 2], values.reduce(0, +) / Double(values.count), last)
}

/// The split in a few lines, for many partitions: the spread of sizes, of the number of classes
/// present and of the largest class's share, then the class totals.
public func partitionSummary(_ histogram: [[Int]]) -> String {
    let totals = histogram.map { $0.reduce(0, +) }
    let present = histogram.map { $0.filter { $0 > 0 }.count }
    let top = zip(histogram, totals).map { counts, total in total > 0 ? Double(counts.max() ?? 0) * 100 / Double(total) : 0 }
    func line(_ name: String, _ values: [Double], unit: String = "", decimals: Int = 0) -> String {
        let s = spread(values)
        func f(_ x: Double, _ d: Int) -> String { String(format: "%.\(d)f", x) + unit }
        return "\(name): min \(f(s.min, decimals)), median \(f(s.median, decimals)), mean \(f(s.mean, 1)), max \(f(s.max, decimals))"
    }
    let classes = histogram.first?.count ?? 0
    let sums = (0 ..< classes).map { k in histogram.reduce(0) { $0 + $1[k] } }
    return [
        "\(histogram.count) partitions, \(totals.reduce(0, +)) samples (one row per partition: --all)",
        line("size", totals.map(Double.init)),
        line("classes present", present.map(Double.init)),
        line("largest class share", top, unit: "%"),
        "class totals: " + sums.enumerated().map { "c\($0.offset) \($0.element)" }.joined(separator: ", "),
    ].joined(separator: "\n")
}

/// The histogram as an aligned text table: one row per partition, one column per class, then the
/// size, the number of classes present and the share of the largest class.
public func histogramTable(_ histogram: [[Int]]) -> String {
    let classes = histogram.first?.count ?? 0
    let header = ["part"] + (0 ..< classes).map { "c\($0)" } + ["total", "classes", "top%"]
    var rows: [[String]] = [header]
    for (p, counts) in histogram.enumerated() {
        let total = counts.reduce(0, +)
        let present = counts.filter { $0 > 0 }.count
        let top = total > 0 ? Double(counts.max() ?? 0) * 100 / Double(total) : 0
        rows.append([String(p)] + counts.map(String.init) + [String(total), String(present), String(Int(top.rounded()))])
    }
    let sums = (0 ..< classes).map { k in histogram.reduce(0) { $0 + $1[k] } }
    rows.append(["all"] + sums.map(String.init) + [String(sums.reduce(0, +)), String(sums.filter { $0 > 0 }.count), ""])
    let widths = (0 ..< header.count).map { c in rows.map { $0[c].count }.max() ?? 0 }
    return rows.map { row in
        zip(row, widths).map { String(repeating: " ", count: $1 - $0.count) + $0 }.joined(separator: " ")
    }.joined(separator: "\n")
}
