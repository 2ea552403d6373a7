// NPZDataset: a dataset as an .npz (what `flwr privatize --out DIR` writes and `--dataset npz`
// reads): float32 `images` N×C×H×W in [0, 1] (N×H×W means C = 1; uint8 images are kept as raw
// bytes), integer `labels` of length N, and an optional scalar int64 `classes`.

extension NPZ {
    /// Writes `dataset` to `path`: float32 `images` (N×C×H×W), int64 `labels`, int64 `classes`.
    public static func writeDataset(_ dataset: Dataset, to path: String) throws {
        // Convert straight into the array's byte buffer: one float copy of the data, not two.
        let floatCount = dataset.count * dataset.imageSize
        let bytes = [UInt8](unsafeUninitializedCapacity: floatCount * 4) { buffer, initialized in
            buffer.withMemoryRebound(to: Float.self) { floats in
                dataset.images(at: Array(0 ..< dataset.count), normalize: false, into: floats)
            }
            initialized = floatCount * 4
        }
        let images = NPZArray(name: "images", shape: [dataset.count, dataset.channels, dataset.height, dataset.width],
                              dtype: .float32, data: bytes)
        let labels = NPZArray(name: "labels", shape: [dataset.count], int64s: dataset.labels.map(Int64.init))
        let classes = NPZArray(name: "classes", shape: [], int64s: [Int64(dataset.classes)])
        try write([images, labels, classes], to: path)
    }

    /// Reads a dataset .npz (`images`, `labels`, optional `classes`; else max label + 1).
    public static func readDataset(_ path: String) throws -> Dataset {
        let arrays = try read(path)
        func named(_ names: [String]) -> NPZArray? { arrays.first { names.contains($0.name) } }
        guard let images = named(["images", "x", "x_train"]) else {
            throw LoaderError.malformed(path: path, detail: "no 'images' array (found: \(arrays.map(\.name).joined(separator: ", "))); write it with `flwr privatize` or numpy.savez(path, images=..., labels=...)")
        }
        guard let labelArray = named(["labels", "y", "y_train"]) else {
            throw LoaderError.malformed(path: path, detail: "no 'labels' array (found: \(arrays.map(\.name).joined(separator: ", ")))")
        }
        let shape = images.shape
        let (n, c, h, w): (Int, Int, Int, Int)
        switch shape.count {
        case 4: (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        case 3: (n, c, h, w) = (shape[0], 1, shape[1], shape[2])
        default:
            throw LoaderError.malformed(path: path, detail: "'images' has shape \(shape); expected N×C×H×W or N×H×W")
        }
        guard labelArray.shape.count == 1, [.int64, .int32, .uint8].contains(labelArray.dtype) else {
            throw LoaderError.malformed(path: path, detail: "'labels' must be a 1-d integer array, found \(labelArray.dtype.descr) of shape \(labelArray.shape)")
        }
        guard labelArray.shape[0] == n else {
            throw LoaderError.countMismatch(images: "\(path): images", imageCount: n, labels: "\(path): labels", labelCount: labelArray.shape[0])
        }
        let raw = labelArray.int64s()
        var classes = Int((raw.max() ?? 0) + 1)
        if let given = named(["classes"])?.int64s().first { classes = Int(given) }
        guard classes >= 1 && classes <= 1 << 20 else {
            throw LoaderError.malformed(path: path, detail: "'classes' is \(classes); expected a positive class count")
        }
        var labels = [Int32](repeating: 0, count: n)
        for (i, l) in raw.enumerated() {
            guard l >= 0 && l < Int64(classes) else {
                throw LoaderError.labelOutOfRange(path: path, index: i, label: Int(l), classes: classes)
            }
            labels[i] = Int32(l)
        }
        let name = "npz:" + path
        switch images.dtype {
        case .uint8:
            return Dataset(bytes: images.data, labels: labels, channels: c, height: h, width: w, classes: classes, name: name)
        case .float32, .float64:
            let floats = images.floats()
            if let bad = floats.firstIndex(where: { !$0.isFinite }) {
                throw LoaderError.malformed(path: path, detail: "'images' holds a non-finite value at element \(bad); replace NaN/inf before saving")
            }
            return Dataset(floats: floats, labels: labels, channels: c, height: h, width: w, classes: classes, name: name)
        case .int64, .int32:
            throw LoaderError.malformed(path: path, detail: "'images' is \(images.dtype.descr); expected float32 in [0, 1] or uint8")
        }
    }
}
