// IDX: the format of MNIST and Fashion-MNIST (LeCun et al.), plain or gzipped.
//   magic: 0x00 0x00 <type> <ndim>   (type 0x08 = unsigned byte)
//   ndim big-endian UInt32 sizes, then the data, row-major.
// Images: ndim 3 (N, rows, cols), magic 0x00000803; labels: ndim 1 (N), magic 0x00000801.

/// Readers for IDX files (`*-images-idx3-ubyte[.gz]`, `*-labels-idx1-ubyte[.gz]`).
public enum IDX {
    /// The parsed content of an IDX image file: N images of rows × cols bytes.
    public struct Images: Sendable {
        /// Number of images.
        public var count: Int
        /// Image height.
        public var rows: Int
        /// Image width.
        public var cols: Int
        /// count·rows·cols pixel bytes.
        public var pixels: [UInt8]
    }

    /// Reads an IDX3 unsigned-byte image file (plain or .gz).
    public static func readImages(_ path: String) throws -> Images {
        let bytes = try readMaybeGzip(path)
        let dims = try header(bytes, path: path, ndim: 3)
        let (n, rows, cols) = (dims[0], dims[1], dims[2])
        let start = 16
        guard let need = checkedProduct([n, rows, cols]) else {
            throw LoaderError.malformed(path: path, detail: "header declares \(n) images of \(rows)×\(cols), an impossible size")
        }
        guard bytes.count - start >= need else {
            let whole = rows * cols > 0 ? (bytes.count - start) / (rows * cols) : 0
            throw LoaderError.truncated(path: path, detail: "header promises \(n) images of \(rows)×\(cols) = \(need) bytes, the file holds \(bytes.count - start) (\(whole) whole images)")
        }
        guard bytes.count - start == need else {
            throw LoaderError.malformed(path: path, detail: "\(bytes.count - start - need) bytes after the \(n) images the header declares; the file is damaged or not an IDX image file")
        }
        return Images(count: n, rows: rows, cols: cols, pixels: Array(bytes[start...]))
    }

    /// Reads an IDX1 unsigned-byte label file (plain or .gz), checking labels are < `classes`.
    public static func readLabels(_ path: String, classes: Int) throws -> [Int32] {
        let bytes = try readMaybeGzip(path)
        let n = try header(bytes, path: path, ndim: 1)[0]
        let start = 8
        guard bytes.count - start >= n else {
            throw LoaderError.truncated(path: path, detail: "header promises \(n) labels, the file holds \(bytes.count - start)")
        }
        guard bytes.count - start == n else {
            throw LoaderError.malformed(path: path, detail: "\(bytes.count - start - n) bytes after the \(n) labels the header declares; the file is damaged or not an IDX label file")
        }
        var labels = [Int32](repeating: 0, count: n)
        for i in 0 ..< n {
            let l = bytes[start + i]
            guard Int(l) < classes else {
                throw LoaderError.labelOutOfRange(path: path, index: i, label: Int(l), classes: classes)
            }
            labels[i] = Int32(l)
        }
        return labels
    }

    /// Checks the magic (unsigned bytes, `ndim` dimensions) and returns the dimension sizes.
    static func header(_ bytes: [UInt8], path: String, ndim: Int) throws -> [Int] {
        let expected = "00 00 08 0\(ndim)"
        guard bytes.count >= 4 else {
            throw LoaderError.truncated(path: path, detail: "\(bytes.count) bytes, shorter than the 4-byte IDX magic")
        }
        guard bytes[0] == 0, bytes[1] == 0, bytes[2] == 0x08, Int(bytes[3]) == ndim else {
            throw LoaderError.wrongMagic(path: path, expected: expected, found: hexPrefix(bytes, 4))
        }
        let headerSize = 4 + 4 * ndim
        guard bytes.count >= headerSize else {
            throw LoaderError.truncated(path: path, detail: "\(bytes.count) bytes, shorter than the \(headerSize)-byte header")
        }
        return (0 ..< ndim).map { d in
            let o = 4 + 4 * d
            return Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
        }
    }

    /// Finds `<split>-<kind>-idx<n>-ubyte` in `dir`: plain, .gz, or with MNIST's `.idx` spelling.
    static func locate(dir: String, split: String, kind: String, ndim: Int) throws -> String {
        let names = ["\(split)-\(kind)-idx\(ndim)-ubyte", "\(split)-\(kind).idx\(ndim)-ubyte"]
        for name in names {
            for candidate in [joinPath(dir, name + ".gz"), joinPath(dir, name)] where fileExists(candidate) {
                return candidate
            }
        }
        throw LoaderError.missingFile(
            path: joinPath(dir, names[0] + "[.gz]"),
            hint: "put the four IDX files (train/t10k images and labels, plain or .gz) in one folder and pass it as --data-dir; on Debian, `apt install dataset-fashion-mnist` installs Fashion-MNIST in /usr/share/datasets/fashion-mnist")
    }

    /// Loads one split (`train` or `t10k`) of an IDX dataset in `dir` as 1×28×28 raw bytes.
    static func loadSplit(dir: String, split: String, datasetName: String, classes: Int,
                          mean: Float, std: Float) throws -> Dataset {
        let imagePath = try locate(dir: dir, split: split, kind: "images", ndim: 3)
        let labelPath = try locate(dir: dir, split: split, kind: "labels", ndim: 1)
        let images = try readImages(imagePath)
        let labels = try readLabels(labelPath, classes: classes)
        guard images.count == labels.count else {
            throw LoaderError.countMismatch(images: imagePath, imageCount: images.count, labels: labelPath, labelCount: labels.count)
        }
        return Dataset(bytes: images.pixels, labels: labels, channels: 1, height: images.rows, width: images.cols,
                       classes: classes, name: "\(datasetName)/\(split == "t10k" ? "test" : split)",
                       channelMean: [mean], channelStd: [std])
    }
}
