// Tabular: a CSV file (one sample per row, one numeric feature per column, one label column) as
// a Dataset of N×F float32 features with integer labels.
//
// Parsing is yaslab/CSV.swift's (RFC 4180 quoting, CRLF or LF); this file only checks what it
// hands back: a header naming the label column, every row as wide as the header, every feature a
// finite number. Errors name the file, the line (1-based, counting the header and any skipped
// lines) and the column.
//
// Standardisation: features become (x − mean) / std per column, with the mean and the population
// standard deviation of the *training rows this process read* (a column with std 0 is only
// centred). Every client of a federation that mounts the same file computes the same statistics
// without exchanging anything; a client that reads only its own file uses its own statistics.
// When clients must agree on one scale without sharing data, declare the statistics once in a
// file (`--feature-stats F`: CSV `column,mean,std`) and give it to every client and the server.
//
// Labels: when every label is an integer, the integer is the class index (it must be ≥ 0; classes
// = largest + 1). Otherwise labels are names, mapped to 0, 1, … in the byte order of their UTF-8
// text (`"benign" < "malignant"`), so every process reading the same set of names agrees.
import CSV
import Foundation

/// Which files a file-based dataset (`--dataset csv` or `--dataset npz --data-file F`) reads.
public struct DataFiles: Sendable, Equatable {
    /// The training file (a .csv, or any .npz with `images`/`features` and `labels`).
    public var dataFile: String?
    /// The test file in the same format; nil: a CSV holds out every fifth row, an npz has none.
    public var testFile: String?
    /// The CSV column holding the class (its header name, or its 0-based index with `header: false`).
    public var labelColumn: String?
    /// A CSV `column,mean,std` declaring the standardisation statistics (nil: computed from the
    /// training rows read).
    public var featureStats: String?
    /// Whether the first CSV row (after `skipLines`) names the columns; without one, columns are
    /// named by their 0-based index ("0", "1", …).
    public var header: Bool
    /// Lines at the top of the CSV file to ignore before the header (or the first row).
    public var skipLines: Int

    /// File options; every field defaults to "not given".
    public init(dataFile: String? = nil, testFile: String? = nil, labelColumn: String? = nil,
                featureStats: String? = nil, header: Bool = true, skipLines: Int = 0) {
        self.dataFile = dataFile; self.testFile = testFile; self.labelColumn = labelColumn
        self.featureStats = featureStats; self.header = header; self.skipLines = skipLines
    }
}

extension DataFiles {
    /// The CSV files of a site's own folder, when no `--data-file` is given: `DIR/train.csv` (and
    /// `DIR/test.csv` when present), else the folder's only `.csv` file. A folder with none, or
    /// with several and no `train.csv`, is an error saying which file to name.
    public func locatingCSV(in dataDir: String?) throws -> DataFiles {
        guard dataFile == nil, let dir = dataDir else { return self }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".csv") }.sorted()
        } catch {
            throw LoaderError.missingFile(path: dir, hint: "--dataset csv --data-dir needs a readable folder holding the site's .csv file (or give --data-file F.csv)")
        }
        var located = self
        if names.contains("train.csv") {
            located.dataFile = dir + "/train.csv"
            if testFile == nil, names.contains("test.csv") { located.testFile = dir + "/test.csv" }
        } else if names.count == 1 {
            located.dataFile = dir + "/" + names[0]
        } else if names.isEmpty {
            throw LoaderError.missingFile(path: dir, hint: "the folder holds no .csv file; put the site's CSV there or give --data-file F.csv")
        } else {
            throw LoaderError.malformed(path: dir, detail: "holds \(names.count) .csv files (\(names.prefix(5).joined(separator: ", "))); name the training file with --data-file, or call it train.csv (and the test file test.csv)")
        }
        return located
    }
}

/// The rows of a CSV file as text, with the line each row starts on.
struct CSVTable {
    var columns: [String]
    var rows: [[String]]
    var lines: [Int]
}

/// Reads CSV files into feature datasets.
public enum Tabular {
    /// Every `heldOutEvery`-th data row (the 5th, 10th, …) is the test set when no test file is given.
    public static let heldOutEvery = 5

    /// Loads `files.dataFile` (and `files.testFile`, else every fifth row as the test set) as
    /// standardised features with class labels.
    public static func load(_ files: DataFiles) throws -> DatasetSplit {
        guard let path = files.dataFile else {
            throw LoaderError.missingFile(path: "(no --data-file)", hint: "--dataset csv needs --data-file F.csv and --label-column NAME")
        }
        guard let labelColumn = files.labelColumn else {
            throw LoaderError.malformed(path: path, detail: "no --label-column given; name the column that holds the class")
        }
        let table = try readCSV(path, header: files.header, skipLines: files.skipLines)
        var (features, raw) = try columns(table, labelColumn: labelColumn, path: path)
        var trainRows = Array(0 ..< raw.count), testRows: [Int] = []
        var testFeatures: [[Float]] = [], testRaw: [String] = []
        if let testPath = files.testFile {
            let test = try readCSV(testPath, header: files.header, skipLines: files.skipLines)
            guard test.columns == table.columns else {
                throw LoaderError.malformed(path: testPath, detail: "columns \(test.columns) differ from \(path)'s \(table.columns); train and test files need the same header")
            }
            (testFeatures, testRaw) = try columns(test, labelColumn: labelColumn, path: testPath)
        } else {
            testRows = trainRows.filter { $0 % heldOutEvery == heldOutEvery - 1 }
            trainRows = trainRows.filter { $0 % heldOutEvery != heldOutEvery - 1 }
            testFeatures = testRows.map { features[$0] }; testRaw = testRows.map { raw[$0] }
            features = trainRows.map { features[$0] }; raw = trainRows.map { raw[$0] }
        }
        guard !features.isEmpty else {
            throw LoaderError.malformed(path: path, detail: "no training rows (the file has \(table.rows.count) data rows); add rows or give a separate --test-file")
        }
        let names = table.columns.filter { $0 != labelColumn }
        let classes = try ClassMapping(labels: raw + testRaw, path: path)
        let stats = try files.featureStats.map { try declaredStats($0, columns: names) }
            ?? computedStats(features)
        let train = dataset(features, classes.indices(raw), classes, stats, names, name: "csv:" + path)
        var test = dataset(testFeatures, classes.indices(testRaw), classes, stats, names,
                           name: "csv:" + (files.testFile ?? path + " (every \(heldOutEvery)th row)"))
        if testFeatures.isEmpty { test.name = "csv:" + path + " (no test rows)" }
        return DatasetSplit(train: train, test: test)
    }

    /// The table of `path`: column names and the non-blank rows, each as wide as the header.
    static func readCSV(_ path: String, header: Bool, skipLines: Int) throws -> CSVTable {
        let bytes = try readFileBytes(path)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw LoaderError.malformed(path: path, detail: "not UTF-8 text; save the CSV as UTF-8")
        }
        var body = Substring(text), line = 1
        if body.first == "\u{FEFF}" { body = body.dropFirst() }   // a UTF-8 byte-order mark (spreadsheet exports)
        for _ in 0 ..< skipLines {
            guard let newline = body.firstIndex(of: "\n") else { body = ""; break }
            body = body[body.index(after: newline)...]; line += 1
        }
        guard body.contains(where: { !$0.isWhitespace }) else {
            throw LoaderError.malformed(path: path, detail: "empty file: no header and no rows" + (skipLines > 0 ? " after skipping \(skipLines) lines" : "") + "; check --data-file")
        }
        let reader: CSVReader
        do {
            reader = try CSVReader(string: String(body), hasHeaderRow: false)
        } catch {
            throw LoaderError.malformed(path: path, detail: "not readable as CSV (\(error))")
        }
        var rows: [[String]] = [], lines: [Int] = []
        while let row = reader.next() {
            let start = line
            line += 1 + row.reduce(0) { $0 + $1.reduce(0) { $1 == "\n" ? $0 + 1 : $0 } }
            if row.count == 1 && row[0].allSatisfy(\.isWhitespace) { continue }   // blank line
            rows.append(row); lines.append(start)
        }
        if let error = reader.error {
            throw LoaderError.malformed(path: path, detail: "CSV error near line \(line) (\(error))")
        }
        guard let first = rows.first else {
            throw LoaderError.malformed(path: path, detail: "empty file: no rows; check --data-file")
        }
        let columns = header ? first.map { $0.trimmingCharacters(in: .whitespaces) } : first.indices.map(String.init)
        if header { rows.removeFirst(); lines.removeFirst() }
        if let dup = Dictionary(grouping: columns, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw LoaderError.malformed(path: path, detail: "the header names column '\(dup)' twice; column names must be unique")
        }
        for (row, line) in zip(rows, lines) where row.count != columns.count {
            throw LoaderError.malformed(path: path, detail: "line \(line) has \(row.count) fields but \(header ? "the header has" : "the first row has") \(columns.count); every row needs one value per column (a ragged row, or an unquoted comma in a field)")
        }
        return CSVTable(columns: columns, rows: rows, lines: lines)
    }

    /// Each row's features (in column order, without the label column) and its label text.
    static func columns(_ table: CSVTable, labelColumn: String, path: String) throws -> ([[Float]], [String]) {
        guard let labelIndex = table.columns.firstIndex(of: labelColumn) else {
            throw LoaderError.malformed(path: path, detail: "no column '\(labelColumn)' for --label-column; the columns are: \(table.columns.joined(separator: ", "))")
        }
        guard table.columns.count >= 2 else {
            throw LoaderError.malformed(path: path, detail: "only the label column '\(labelColumn)'; a feature column is needed too")
        }
        var features: [[Float]] = [], labels: [String] = []
        features.reserveCapacity(table.rows.count); labels.reserveCapacity(table.rows.count)
        for (row, line) in zip(table.rows, table.lines) {
            var values: [Float] = []
            values.reserveCapacity(row.count - 1)
            for (k, field) in row.enumerated() where k != labelIndex {
                let text = field.trimmingCharacters(in: .whitespaces)
                guard let value = Float(text), value.isFinite else {
                    throw LoaderError.malformed(path: path, detail: "line \(line), column '\(table.columns[k])' (field \(k + 1)): '\(field)' is not a finite number; features must be numeric (encode categories as numbers, or drop the column)")
                }
                values.append(value)
            }
            let label = row[labelIndex].trimmingCharacters(in: .whitespaces)
            guard !label.isEmpty else {
                throw LoaderError.malformed(path: path, detail: "line \(line), column '\(labelColumn)': the label is empty; every row needs a class")
            }
            features.append(values); labels.append(label)
        }
        return (features, labels)
    }

    /// Per-column mean and population standard deviation (Double sums); std 0 becomes 1.
    static func computedStats(_ rows: [[Float]]) -> (mean: [Float], std: [Float]) {
        let f = rows.first?.count ?? 0, n = Double(rows.count)
        var sum = [Double](repeating: 0, count: f)
        for row in rows { for j in 0 ..< f { sum[j] += Double(row[j]) } }
        let mean = sum.map { $0 / n }
        var sq = [Double](repeating: 0, count: f)
        for row in rows { for j in 0 ..< f { let d = Double(row[j]) - mean[j]; sq[j] += d * d } }
        let std = sq.map { s -> Double in let v = (s / n).squareRoot(); return v > 1e-12 ? v : 1 }
        return (mean.map(Float.init), std.map(Float.init))
    }

    /// The statistics declared in `path` (CSV with header `column,mean,std`), one per feature.
    static func declaredStats(_ path: String, columns: [String]) throws -> (mean: [Float], std: [Float]) {
        let table = try readCSV(path, header: true, skipLines: 0)
        guard let c = table.columns.firstIndex(of: "column"), let m = table.columns.firstIndex(of: "mean"),
              let s = table.columns.firstIndex(of: "std") else {
            throw LoaderError.malformed(path: path, detail: "--feature-stats needs the header column,mean,std; found \(table.columns.joined(separator: ","))")
        }
        var byName: [String: (Float, Float)] = [:]
        for (row, line) in zip(table.rows, table.lines) {
            guard let mean = Float(row[m].trimmingCharacters(in: .whitespaces)), mean.isFinite,
                  let std = Float(row[s].trimmingCharacters(in: .whitespaces)), std.isFinite, std > 0 else {
                throw LoaderError.malformed(path: path, detail: "line \(line): mean '\(row[m])' and std '\(row[s])' must be finite numbers, std > 0")
            }
            byName[row[c].trimmingCharacters(in: .whitespaces)] = (mean, std)
        }
        var mean: [Float] = [], std: [Float] = []
        for name in columns {
            guard let (mu, sigma) = byName[name] else {
                throw LoaderError.malformed(path: path, detail: "no statistics for feature column '\(name)'; add a row '\(name),MEAN,STD'")
            }
            mean.append(mu); std.append(sigma)
        }
        return (mean, std)
    }

    /// `split` (raw features, e.g. an npz `features` array) standardised with the training set's
    /// statistics, or those declared in `featureStats` (then every feature is named by its index).
    static func standardized(_ split: DatasetSplit, featureStats: String?) throws -> DatasetSplit {
        let f = split.train.featureCount, names = (0 ..< f).map(String.init)
        func rows(_ d: Dataset) -> [[Float]] {
            let flat = d.allImages()
            return (0 ..< d.count).map { Array(flat[$0 * f ..< ($0 + 1) * f]) }
        }
        let train = rows(split.train), test = rows(split.test)
        let stats = try featureStats.map { try declaredStats($0, columns: names) } ?? computedStats(train)
        let classes = split.train.classes
        func rebuilt(_ r: [[Float]], _ d: Dataset) -> Dataset {
            var flat = [Float](repeating: 0, count: r.count * f)
            for (i, row) in r.enumerated() { for j in 0 ..< f { flat[i * f + j] = (row[j] - stats.mean[j]) / stats.std[j] } }
            return Dataset(features: flat, labels: d.labels, featureCount: f, classes: classes, name: d.name,
                           featureNames: names, featureMean: stats.mean, featureStd: stats.std)
        }
        return DatasetSplit(train: rebuilt(train, split.train), test: rebuilt(test, split.test))
    }

    /// A feature dataset (F channels of 1×1) holding the standardised values.
    static func dataset(_ rows: [[Float]], _ labels: [Int32], _ classes: ClassMapping,
                        _ stats: (mean: [Float], std: [Float]), _ names: [String], name: String) -> Dataset {
        let f = names.count
        var flat = [Float](repeating: 0, count: rows.count * f)
        for (i, row) in rows.enumerated() {
            for j in 0 ..< f { flat[i * f + j] = (row[j] - stats.mean[j]) / stats.std[j] }
        }
        return Dataset(features: flat, labels: labels, featureCount: f, classes: classes.count, name: name,
                       featureNames: names, featureMean: stats.mean, featureStd: stats.std,
                       classNames: classes.names)
    }
}

/// Label text → class index: integers as themselves, names in UTF-8 byte order.
struct ClassMapping {
    /// Class names in index order (the integers' text for integer labels).
    let names: [String]
    private let index: [String: Int32]
    private let integers: Bool

    /// Number of classes.
    var count: Int { names.count }

    init(labels: [String], path: String) throws {
        let ints = labels.map { Int($0) }
        if !labels.isEmpty, ints.allSatisfy({ $0 != nil }) {
            let values = ints.compactMap { $0 }
            if let bad = values.firstIndex(where: { $0 < 0 || $0 >= 1 << 20 }) {
                throw LoaderError.malformed(path: path, detail: "integer label \(values[bad]) is outside 0..<\(1 << 20); integer labels are class indices")
            }
            let k = (values.max() ?? 0) + 1
            names = (0 ..< k).map(String.init); index = [:]; integers = true
        } else {
            names = Set(labels).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            var map: [String: Int32] = [:]
            for (i, n) in names.enumerated() { map[n] = Int32(i) }
            index = map; integers = false
        }
    }

    /// The class index of each label (every label was seen at init).
    func indices(_ labels: [String]) -> [Int32] {
        integers ? labels.map { Int32($0) ?? 0 } : labels.map { index[$0] ?? 0 }
    }
}
