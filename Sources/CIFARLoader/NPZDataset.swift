// NPZDataset: a dataset as an .npz (what `flwr privatize --out DIR` writes and `--dataset npz`
// reads): float32 `images` N×C×H×W in [0, 1] (N×H×W means C = 1; uint8 images are kept as raw
// bytes), integer `labels` of length N, and an optional scalar int64 `classes`. Any numpy-written
// file with `images` (N×C×H×W or N×H×W, float or uint8) or `features` (N×F, float or integer)
// and `labels` reads the same way; features come back unstandardised (`loadDataset` standardises).

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
        let featureArray = named(["features"])
        guard let images = named(["images", "x", "x_train"]) ?? featureArray else {
            throw LoaderError.malformed(path: path, detail: "no 'images' array (nor 'features'; found: \(arrays.map(\.name).joined(separator: ", "))); write it with `flwr privatize` or numpy.savez(path, images=..., labels=...) / numpy.savez(path, features=..., labels=...)")
        }
        guard let labelArray = named(["labels", "y", "y_train"]) else {
            throw LoaderError.malformed(path: path, detail: "no 'labels' array (found: \(arrays.map(\.name).joined(separator: ", ")))")
        }
        let isFeatures = images.name == "features"
        let shape = images.shape
        let (n, c, h, w): (Int, Int, Int, Int)
        switch (isFeatures, shape.count) {
        case (false, 4): (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        case (false, 3): (n, c, h, w) = (shape[0], 1, shape[1], shape[2])
        case (true, 2): (n, c, h, w) = (shape[0], shape[1], 1, 1)
        case (false, _):
            throw LoaderError.malformed(path: path, detail: "'images' has shape \(shape); expected N×C×H×W or N×H×W (tabular data goes in a 'features' array N×F)")
        case (true, _):
            throw LoaderError.malformed(path: path, detail: "'features' has shape \(shape); expected N×F (images go in an 'images' array)")
        }
        guard c >= 1, h >= 1, w >= 1 else {
            throw LoaderError.malformed(path: path, detail: "'\(images.name)' has shape \(shape) with a zero-sized sample; every sample needs at least one value")
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
        if isFeatures {
            let floats = images.floats()
            if let bad = floats.firstIndex(where: { !$0.isFinite }) {
                throw LoaderError.malformed(path: path, detail: "'features' holds a non-finite value in row \(bad / c), column \(bad % c); replace NaN/inf before saving")
            }
            return Dataset(features: floats, labels: labels, featureCount: c, classes: classes, name: name,
                           featureNames: (0 ..< c).map(String.init), featureMean: Array(repeating: 0, count: c),
                           featureStd: Array(repeating: 1, count: c))
        }
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
