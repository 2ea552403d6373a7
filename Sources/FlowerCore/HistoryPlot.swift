import Foundation

/// Renders a `History` as an SVG image: accuracy per round (top panel) and loss per round
/// (bottom panel). Pure string output, no dependencies; rounds without a value are skipped.
public struct HistoryPlot: Sendable {
    /// Image width in pixels.
    public var width: Int
    /// Image height in pixels (split between the two panels).
    public var height: Int
    /// Title drawn above the panels.
    public var title: String

    /// A plot of the given size and title.
    public init(width: Int = 640, height: Int = 520, title: String = "flwr: accuracy and loss per round") {
        self.width = max(width, 200)
        self.height = max(height, 200)
        self.title = title
    }

    /// The SVG document for `history`.
    public func svg(_ history: History) -> String {
        let w = Double(width), h = Double(height)
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\">\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"white\"/>\n"
        out += text(w / 2, 22, title, size: 15, anchor: "middle")
        let rounds = history.rounds.map(\.round)
        let panelH = (h - 40) / 2
        out += panel(label: "accuracy", color: "#1f77b4", rounds: rounds,
                     values: history.rounds.map(\.accuracy), top: 34, height: panelH - 10, fixedRange: (0, 1))
        out += panel(label: "loss", color: "#d62728", rounds: rounds,
                     values: history.rounds.map(\.loss), top: 34 + panelH, height: panelH - 10, fixedRange: nil)
        out += "</svg>\n"
        return out
    }

    /// Writes the SVG for `history` to `path` atomically.
    public func write(_ history: History, to path: String) throws(FileError) {
        try AtomicFile.write(Array(svg(history).utf8), to: path)
    }

    private func panel(label: String, color: String, rounds: [Int], values: [Double?], top: Double,
                       height ph: Double, fixedRange: (Double, Double)?) -> String {
        let left = 64.0, right = Double(width) - 20, bottom = top + ph - 28
        var out = "<g class=\"panel\" id=\"\(label)\">\n"
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(right - left))\" height=\"\(f(bottom - top))\" fill=\"none\" stroke=\"#888\"/>\n"
        out += text(14, (top + bottom) / 2, label, size: 12, anchor: "middle", rotate: true)
        out += text((left + right) / 2, bottom + 26, "round", size: 11, anchor: "middle")

        let points = zip(rounds, values).compactMap { r, v in v.flatMap { $0.isFinite ? (Double(r), $0) : nil } }
        let xMin = Double(rounds.min() ?? 1), xMax = Double(rounds.max() ?? 1)
        var (yMin, yMax) = fixedRange ?? (0, points.map(\.1).max() ?? 1)
        if let lo = points.map(\.1).min(), lo < yMin { yMin = lo }
        if let hi = points.map(\.1).max(), hi > yMax { yMax = hi }
        if yMax <= yMin { yMax = yMin + 1 }
        let ticks = Self.niceTicks(yMin, yMax)
        (yMin, yMax) = (ticks.first ?? yMin, ticks.last ?? yMax)
        let decimals = Self.decimals(ticks.count > 1 ? ticks[1] - ticks[0] : 1)
        func x(_ r: Double) -> Double { xMax > xMin ? left + (r - xMin) / (xMax - xMin) * (right - left) : (left + right) / 2 }
        func y(_ v: Double) -> Double { bottom - (v - yMin) / (yMax - yMin) * (bottom - top) }

        for v in ticks {  // horizontal grid and y labels at round values
            out += "<line x1=\"\(f(left))\" y1=\"\(f(y(v)))\" x2=\"\(f(right))\" y2=\"\(f(y(v)))\" stroke=\"#ddd\"/>\n"
            out += text(left - 6, y(v) + 4, String(format: "%.\(decimals)f", v), size: 10, anchor: "end")
        }
        let step = max(1, rounds.count / 10)
        for (i, r) in rounds.enumerated() where i % step == 0 || i == rounds.count - 1 {  // x labels
            out += text(x(Double(r)), bottom + 13, "\(r)", size: 10, anchor: "middle")
        }
        if points.isEmpty {
            out += text((left + right) / 2, (top + bottom) / 2, "no \(label) recorded", size: 12, anchor: "middle")
        } else {
            let path = points.map { "\(f(x($0.0))),\(f(y($0.1)))" }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"/>\n"
            for p in points {
                out += "<circle cx=\"\(f(x(p.0)))\" cy=\"\(f(y(p.1)))\" r=\"3\" fill=\"\(color)\"><title>round \(Int(p.0)): \(label) \(String(format: "%.4f", p.1))</title></circle>\n"
            }
        }
        out += "</g>\n"
        return out
    }

    /// Round tick values covering [lo, hi], as plotting libraries choose them: a step of 1, 2,
    /// 2.5 or 5 times a power of ten giving about four intervals, the ends rounded outwards to
    /// multiples of it (0…1 → 0, 0.25, …, 1; 0…1.25 → 0, 0.5, 1.0, 1.5).
    static func niceTicks(_ lo: Double, _ hi: Double) -> [Double] {
        guard lo.isFinite, hi.isFinite, hi > lo else { return [lo, lo + 1] }
        let raw = (hi - lo) / 4
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = ([1, 2, 2.5, 5, 10].first { $0 * magnitude >= raw * (1 - 1e-9) } ?? 10) * magnitude
        let first = (lo / step + 1e-9).rounded(.down), last = (hi / step - 1e-9).rounded(.up)
        return stride(from: first, through: last, by: 1).map { ($0 * step * 1e9).rounded() / 1e9 }
    }

    /// Decimals needed to print multiples of `step` exactly (0.25 → 2, 0.5 → 1, 2 → 0).
    static func decimals(_ step: Double) -> Int {
        var d = 0
        while d < 6 && abs(step * pow(10, Double(d)) - (step * pow(10, Double(d))).rounded()) > 1e-6 { d += 1 }
        return d
    }

    private func text(_ x: Double, _ y: Double, _ s: String, size: Int, anchor: String, rotate: Bool = false) -> String {
        let transform = rotate ? " transform=\"rotate(-90 \(f(x)) \(f(y)))\"" : ""
        return "<text x=\"\(f(x))\" y=\"\(f(y))\" font-family=\"sans-serif\" font-size=\"\(size)\" text-anchor=\"\(anchor)\"\(transform)>\(Self.escape(s))</text>\n"
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// `s` with XML's five special characters escaped.
    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }
}
