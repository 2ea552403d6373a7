// Tabular: CSV files read through yaslab/CSV.swift into standardised feature datasets; every
// bad input a clear error naming the line and column. Values are checked against hand-computed
// means and standard deviations.
@testable import CIFARLoader
import Foundation
import Testing

/// Writes `text` to a fresh file in a fresh folder and returns its path.
private func csvFile(_ text: String, name: String = "data.csv") throws -> String {
    let dir = NSTemporaryDirectory() + "tabular-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let path = dir + "/" + name
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
}

/// The error text `body` throws (nil if it does not throw).
private func errorText(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}

@Suite struct TabularTests {
    /// Ten rows, string labels, a quoted label holding a comma; every 5th row held out.
    @Test func loadsStandardisesAndHoldsOutEveryFifthRow() throws {
        var text = "x,\"y\",species\n"
        for i in 0 ..< 10 { text += "\(i),\(2 * i + 1),\(i % 2 == 0 ? "\"b, big\"" : "a")\n" }
        let path = try csvFile(text)
        let split = try loadDataset(.csv, dataDir: nil, files: DataFiles(dataFile: path, labelColumn: "species"))
        let train = split.train, test = split.test
        #expect(train.inputKind == .features && train.featureCount == 2 && train.featureNames == ["x", "y"])
        #expect(train.count == 8 && test.count == 2, "rows 4 and 9 (0-based) are the test set")
        #expect(train.classNames == ["a", "b, big"], "names in byte order")
        #expect(train.classes == 2 && test.classes == 2)
        #expect(train.labels == [1, 0, 1, 0, 0, 1, 0, 1] && test.labels == [1, 0])
        // Training x = 0,1,2,3,5,6,7,8: mean 4, population variance (16+9+4+1+1+4+9+16)/8 = 7.5.
        let mean: Float = 4, std = Float(7.5).squareRoot()
        #expect(abs(train.featureMean[0] - mean) < 1e-6 && abs(train.featureStd[0] - std) < 1e-6)
        #expect(abs(train.featureMean[1] - 9) < 1e-6 && abs(train.featureStd[1] - 2 * std) < 1e-5, "y = 2x + 1")
        let x = train.allImages(), t = test.allImages()
        for (k, raw) in [0, 1, 2, 3, 5, 6, 7, 8].enumerated() {
            #expect(abs(x[2 * k] - (Float(raw) - mean) / std) < 1e-6, "train row \(k)")
            #expect(abs(x[2 * k + 1] - x[2 * k]) < 1e-6, "y standardises to the same values as x")
        }
        #expect(abs(t[0] - (4 - mean) / std) < 1e-6 && abs(t[2] - (9 - mean) / std) < 1e-6, "test uses train's statistics")
    }

    @Test func integerLabelsAreClassIndicesAndStatsCanBeDeclared() throws {
        let path = try csvFile("label,a,b\n2,1.5,10\n0,2.5,10\n2,3.5,10\n")
        let stats = try csvFile("column,mean,std\nb,10,2\na,2,0.5\n", name: "stats.csv")
        let other = try csvFile("label,a,b\n1,0,0\n", name: "test.csv")
        let split = try loadDataset(.csv, dataDir: nil, files: DataFiles(dataFile: path, testFile: other, labelColumn: "label",
                                                                          featureStats: stats))
        #expect(split.train.labels == [2, 0, 2] && split.train.classes == 3 && split.test.labels == [1])
        #expect(split.train.allImages() == [-1, 0, 1, 0, 3, 0], "(a − 2) / 0.5 and (b − 10) / 2")
        #expect(split.test.allImages() == [-4, -5])
    }

    /// A spreadsheet export: byte-order mark, CRLF, a quoted header name, spaces around numbers.
    @Test func byteOrderMarkAndCRLFAreRead() throws {
        let path = try csvFile("\u{FEFF}\"size\",label\r\n 1.5 ,x\r\n2.5,y\r\n")
        let split = try loadDataset(.csv, dataDir: nil, files: DataFiles(dataFile: path, testFile: path, labelColumn: "label"))
        #expect(split.train.featureNames == ["size"] && split.train.labels == [0, 1] && split.train.classNames == ["x", "y"])
        #expect(split.train.allImages() == [-1, 1], "mean 2, std 0.5")
    }

    /// The format scikit-learn ships (sklearn/datasets/data/*.csv): a preamble line, no header.
    @Test func headerlessFileWithAPreambleNamesColumnsByIndex() throws {
        let path = try csvFile("3,2,setosa,versicolor\n5.1,3.5,0\n4.9,3.0,1\n4.7,3.2,0\n")
        let split = try loadDataset(.csv, dataDir: nil, files: DataFiles(dataFile: path, testFile: path, labelColumn: "2",
                                                                          header: false, skipLines: 1))
        #expect(split.train.featureNames == ["0", "1"] && split.train.labels == [0, 1, 0])
        #expect(abs(split.train.featureMean[0] - 4.9) < 1e-6)
    }

    /// Dirichlet partitioning of CSV labels is the partitioner's result on the same label list.
    @Test func dirichletPartitionsCSVLabelsAsAnyOther() throws {
        var text = "f,c\n"
        for i in 0 ..< 200 { text += "\(i),\(["x", "y", "z"][i * 7 % 3])\n" }
        let train = try Tabular.load(DataFiles(dataFile: try csvFile(text), labelColumn: "c")).train
        let scheme = Partitioner.dirichlet(alpha: 0.5, minPartitionSize: 5)
        let parts = try partition(labels: train.labels, numPartitions: 4, scheme: scheme, seed: 7)
        #expect(parts == (try partition(labels: train.labels.map { $0 }, numPartitions: 4, scheme: scheme, seed: 7)))
        #expect(parts.map(\.count).reduce(0, +) == 160 && Set(parts.joined()).count == 160)
    }

    /// Each bad file: (CSV text, label column, words the error must contain).
    @Test(arguments: [
        ("a,b\n1,2\n", "label", ["no column 'label'", "a, b"]),
        ("a,label\n1,0\n2,0\n3,zz\nfoo,1\n", "label", ["line 5", "column 'a'", "'foo' is not a finite number"]),
        ("a,label\n1,0\n\"multi\nline\",1\n", "label", ["line 3", "column 'a'"]),
        ("a,label\n1,0\nnan,1\n", "label", ["line 3", "'nan'"]),
        ("", "label", ["empty file"]),
        ("  \n\n", "label", ["empty file"]),
        ("a,b,label\n1,2,0\n3,4\n", "label", ["line 3 has 2 fields", "header has 3"]),
        ("a,b,label\n1,2,0\n3,4,5,6\n", "label", ["line 3 has 4 fields"]),
        ("a,label\n", "label", ["no training rows"]),
        ("a,a,label\n1,2,0\n", "label", ["column 'a' twice"]),
        ("a,label\n1,\n", "label", ["line 2", "label is empty"]),
    ])
    func badFilesAreClearErrors(text: String, label: String, words: [String]) throws {
        let path = try csvFile(text)
        let message = errorText { _ = try loadDataset(.csv, dataDir: nil, files: DataFiles(dataFile: path, labelColumn: label)) }
        let text = try #require(message, "a bad file must throw")
        #expect(text.hasPrefix(path), "the error names the file: \(text)")
        for word in words { #expect(text.contains(word), "'\(word)' missing from: \(text)") }
    }

    /// An edge site's folder (`flwr client --dataset csv --data-dir DIR`, no --data-file): its only
    /// .csv, or train.csv with test.csv; none or several is an error naming the folder.
    @Test func aSitesFolderIsReadWithoutDataFile() throws {
        let one = try csvFile("a,label\n1,0\n2,1\n3,0\n4,1\n5,0\n", name: "site-3.csv")
        let dir = (one as NSString).deletingLastPathComponent
        let whole = try loadDataset(.csv, dataDir: dir, files: DataFiles(labelColumn: "label"))
        #expect(whole.train.count == 4 && whole.test.count == 1, "the folder's only CSV, every 5th row held out")
        try Data("a,label\n9,1\n".utf8).write(to: URL(fileURLWithPath: dir + "/other.csv"))
        let several = errorText { _ = try loadDataset(.csv, dataDir: dir, files: DataFiles(labelColumn: "label")) }
        #expect(several?.contains("2 .csv files") == true && several?.contains("--data-file") == true, "\(several ?? "")")
        try Data("a,label\n1,0\n2,1\n".utf8).write(to: URL(fileURLWithPath: dir + "/train.csv"))
        try Data("a,label\n7,1\n".utf8).write(to: URL(fileURLWithPath: dir + "/test.csv"))
        let pair = try loadDataset(.csv, dataDir: dir, files: DataFiles(labelColumn: "label"))
        #expect(pair.train.count == 2 && pair.test.count == 1 && pair.test.labels == [1], "train.csv and test.csv")
        let empty = NSTemporaryDirectory() + "tabular-empty-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let none = errorText { _ = try loadDataset(.csv, dataDir: empty, files: DataFiles(labelColumn: "label")) }
        #expect(none?.contains("no .csv file") == true, "\(none ?? "")")
    }

    @Test func missingOptionsAndStatsAreClearErrors() throws {
        let path = try csvFile("a,b,label\n1,2,0\n")
        #expect(errorText { _ = try loadDataset(.csv, dataDir: nil) }?.contains("--data-file") == true)
        #expect(errorText { _ = try Tabular.load(DataFiles(dataFile: path)) }?.contains("--label-column") == true)
        let stats = try csvFile("column,mean,std\na,0,1\n", name: "s.csv")
        let noB = errorText { _ = try Tabular.load(DataFiles(dataFile: path, labelColumn: "label", featureStats: stats)) }
        #expect(noB?.contains("no statistics for feature column 'b'") == true, "\(noB ?? "")")
        let zero = try csvFile("column,mean,std\na,0,0\nb,0,1\n", name: "z.csv")
        #expect(errorText { _ = try Tabular.load(DataFiles(dataFile: path, labelColumn: "label", featureStats: zero)) }?.contains("std > 0") == true)
        #expect(errorText { _ = try Tabular.load(DataFiles(dataFile: path + ".missing", labelColumn: "label")) }?.contains("no such file") == true)
    }
}
