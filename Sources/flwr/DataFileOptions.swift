// The flags of file-based datasets: `--dataset csv` (and `--dataset npz --data-file F`).
import ArgumentParser
import CIFARLoader

/// `--data-file`, `--test-file`, `--label-column`, `--feature-stats`, `--csv-no-header`,
/// `--csv-skip-lines`: which file(s) a CSV or npz dataset is read from and how.
struct DataFileOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The data file of --dataset csv (a CSV with a header row), or of --dataset npz (any .npz with `images` N×C×H×W / N×H×W or `features` N×F, and `labels`).", valueName: "file")) var dataFile: String?
    @Option(help: ArgumentHelp("A test file in the same format (default: a CSV holds out every 5th row; an npz has no test set).", valueName: "file")) var testFile: String?
    @Option(help: ArgumentHelp("The CSV column holding the class: its header name, or its 0-based index with --csv-no-header. Integer labels are class indices; other labels are sorted by their UTF-8 bytes.", valueName: "name")) var labelColumn: String?
    @Option(help: ArgumentHelp("Declared standardisation statistics: a CSV with header column,mean,std and one row per feature (default: the mean and standard deviation of the training rows read).", valueName: "file")) var featureStats: String?
    @Flag(help: "The CSV has no header row: columns are named 0, 1, 2, … (as --label-column).") var csvNoHeader: Bool = false
    @Option(help: ArgumentHelp("Lines to skip at the top of the CSV before its header or first row (e.g. 1 for scikit-learn's bundled CSVs, whose first line is a count).", valueName: "n")) var csvSkipLines: Int = 0

    func validate() throws { guard csvSkipLines >= 0 else { throw ValidationError("--csv-skip-lines must be 0 or more, got \(csvSkipLines)") } }

    /// The loader's form of these flags.
    var files: DataFiles {
        DataFiles(dataFile: dataFile, testFile: testFile, labelColumn: labelColumn, featureStats: featureStats,
                  header: !csvNoHeader, skipLines: csvSkipLines)
    }
}
