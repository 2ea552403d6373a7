// Dataset: images kept as the raw bytes of their file (UInt8 pixels) or, after privatisation, as
// float32, and converted to NCHW float32 in [0, 1] only for the samples asked for. A client that
// trains on its partition converts that partition alone: ten clients in one process share one
// copy of the raw bytes (copy-on-write arrays) and hold no float copy of the whole dataset.

/// Pixel storage: the file's bytes (value / 255) or floats already in image units.
enum PixelStorage: Sendable {
    case bytes([UInt8])
    case floats([Float])
}

/// What a sample is: an image (pixels nominally in [0, 1]) or a row of tabular features.
public enum InputKind: String, Sendable {
    /// NCHW pixels in [0, 1]; a model maps them to its own input scale.
    case pixels
    /// F standardised features per sample (stored as F channels of 1×1): feed them as they are.
    case features
}

/// Images (NCHW, one sample after the other, C·H·W values each) and their labels; or, with
/// `inputKind == .features`, N×F standardised features (F channels of 1×1).
public struct Dataset: Sendable {
    /// Number of samples.
    public var count: Int
    /// Channels per image (1 for Fashion-MNIST/MNIST, 3 for CIFAR-10).
    public var channels: Int
    /// Image height in pixels.
    public var height: Int
    /// Image width in pixels.
    public var width: Int
    /// Number of classes; every label is in 0..<classes.
    public var classes: Int
    /// One label per sample.
    public var labels: [Int32]
    /// Per-channel mean used by `normalize: true` (of the pixel values in [0, 1]).
    public var channelMean: [Float]
    /// Per-channel standard deviation used by `normalize: true`.
    public var channelStd: [Float]
    /// Where the data came from, for messages and fingerprints (e.g. "fashion-mnist/train").
    public var name: String
    /// Pixels or tabular features.
    public var inputKind: InputKind = .pixels
    /// Feature column names (tabular data only).
    public var featureNames: [String] = []
    /// The mean subtracted from each feature column (tabular data only).
    public var featureMean: [Float] = []
    /// The standard deviation each feature column was divided by (tabular data only).
    public var featureStd: [Float] = []
    /// Class names in index order, where the file named them (CSV string labels).
    public var classNames: [String] = []
    var storage: PixelStorage

    /// Features per sample of tabular data (C·H·W in general).
    public var featureCount: Int { imageSize }

    /// Values per image: C·H·W.
    public var imageSize: Int { channels * height * width }

    /// True while the pixels are still the file's bytes (no float copy exists).
    public var isRawBytes: Bool { if case .bytes = storage { return true } else { return false } }

    /// A dataset over raw 8-bit pixels (`count`·C·H·W bytes, NCHW), converted on demand.
    public init(bytes: [UInt8], labels: [Int32], channels: Int, height: Int, width: Int,
                classes: Int, name: String, channelMean: [Float]? = nil, channelStd: [Float]? = nil) {
        precondition(bytes.count == labels.count * channels * height * width, "pixel count must match labels × C·H·W")
        self.count = labels.count; self.channels = channels; self.height = height; self.width = width
        self.classes = classes; self.labels = labels; self.name = name
        self.storage = .bytes(bytes)
        self.channelMean = channelMean ?? Array(repeating: 0, count: channels)
        self.channelStd = channelStd ?? Array(repeating: 1, count: channels)
        if channelMean == nil { (self.channelMean, self.channelStd) = computeChannelStats() }
    }

    /// A dataset over float32 pixels (NCHW, nominally in [0, 1]), e.g. a privatised release.
    public init(floats: [Float], labels: [Int32], channels: Int, height: Int, width: Int,
                classes: Int, name: String, channelMean: [Float]? = nil, channelStd: [Float]? = nil) {
        precondition(floats.count == labels.count * channels * height * width, "pixel count must match labels × C·H·W")
        self.count = labels.count; self.channels = channels; self.height = height; self.width = width
        self.classes = classes; self.labels = labels; self.name = name
        self.storage = .floats(floats)
        self.channelMean = channelMean ?? Array(repeating: 0, count: channels)
        self.channelStd = channelStd ?? Array(repeating: 1, count: channels)
        if channelMean == nil { (self.channelMean, self.channelStd) = computeChannelStats() }
    }

    /// N×F already standardised features (F channels of 1×1): `images(at:)` returns them as stored.
    public init(features: [Float], labels: [Int32], featureCount: Int, classes: Int, name: String,
                featureNames: [String], featureMean: [Float], featureStd: [Float], classNames: [String] = []) {
        self.init(floats: features, labels: labels, channels: featureCount, height: 1, width: 1, classes: classes,
                  name: name, channelMean: Array(repeating: 0, count: featureCount),
                  channelStd: Array(repeating: 1, count: featureCount))
        self.inputKind = .features
        self.featureNames = featureNames; self.featureMean = featureMean; self.featureStd = featureStd
        self.classNames = classNames
    }

    /// NCHW float32 for just these samples: pixels in [0, 1], or (x − mean_c) / std_c if `normalize`.
    public func images(at indices: [Int], normalize: Bool = false) -> [Float] {
        var out = [Float](repeating: 0, count: indices.count * imageSize)
        out.withUnsafeMutableBufferPointer { buf in
            images(at: indices, normalize: normalize, into: buf)
        }
        return out
    }

    /// Writes the samples at `indices` (NCHW float32) into `out`, which holds at least
    /// `indices.count · imageSize` floats: a training loop reuses one batch buffer this way.
    public func images(at indices: [Int], normalize: Bool, into out: UnsafeMutableBufferPointer<Float>) {
        let size = imageSize, plane = height * width
        precondition(out.count >= indices.count * size, "output buffer too small for \(indices.count) images")
        var scale = [Float](repeating: 1, count: channels), shift = [Float](repeating: 0, count: channels)
        for c in 0 ..< channels where normalize {
            scale[c] = 1 / channelStd[c]; shift[c] = -channelMean[c] / channelStd[c]
        }
        guard let dst = out.baseAddress else { return }
        switch storage {
        case .bytes(let bytes):
            // One 256-entry table per channel: byte → b/255 (correctly rounded, as numpy's x / 255),
            // then the normalisation, so the inner loop is a lookup.
            var table = [Float](repeating: 0, count: 256 * channels)
            for c in 0 ..< channels {
                for v in 0 ..< 256 { table[c * 256 + v] = normalize ? Float(v) / 255 * scale[c] + shift[c] : Float(v) / 255 }
            }
            bytes.withUnsafeBufferPointer { src in
                table.withUnsafeBufferPointer { lut in
                    for (k, i) in indices.enumerated() {
                        precondition(i >= 0 && i < count, "sample index \(i) outside 0..<\(count)")
                        for c in 0 ..< channels {
                            let s = src.baseAddress! + i * size + c * plane, d = dst + k * size + c * plane
                            let t = lut.baseAddress! + c * 256
                            for p in 0 ..< plane { d[p] = t[Int(s[p])] }
                        }
                    }
                }
            }
        case .floats(let floats):
            floats.withUnsafeBufferPointer { src in
                for (k, i) in indices.enumerated() {
                    precondition(i >= 0 && i < count, "sample index \(i) outside 0..<\(count)")
                    for c in 0 ..< channels {
                        let s = src.baseAddress! + i * size + c * plane, d = dst + k * size + c * plane
                        let a = scale[c], b = shift[c]
                        for p in 0 ..< plane { d[p] = s[p] * a + b }
                    }
                }
            }
        }
    }

    /// All images as NCHW float32 (allocates count · C·H·W floats: use on a partition).
    public func allImages(normalize: Bool = false) -> [Float] {
        images(at: Array(0 ..< count), normalize: normalize)
    }

    /// A compact copy of these samples (raw bytes stay bytes); normalisation stats are kept.
    public func subset(_ indices: [Int]) -> Dataset {
        let size = imageSize
        var copy = self
        copy.count = indices.count
        copy.labels = indices.map { labels[$0] }
        switch storage {
        case .bytes(let bytes):
            var out = [UInt8](repeating: 0, count: indices.count * size)
            out.withUnsafeMutableBufferPointer { d in
                bytes.withUnsafeBufferPointer { s in
                    for (k, i) in indices.enumerated() {
                        precondition(i >= 0 && i < count, "sample index \(i) outside 0..<\(count)")
                        (d.baseAddress! + k * size).update(from: s.baseAddress! + i * size, count: size)
                    }
                }
            }
            copy.storage = .bytes(out)
        case .floats(let floats):
            var out = [Float](repeating: 0, count: indices.count * size)
            out.withUnsafeMutableBufferPointer { d in
                floats.withUnsafeBufferPointer { s in
                    for (k, i) in indices.enumerated() {
                        precondition(i >= 0 && i < count, "sample index \(i) outside 0..<\(count)")
                        (d.baseAddress! + k * size).update(from: s.baseAddress! + i * size, count: size)
                    }
                }
            }
            copy.storage = .floats(out)
        }
        return copy
    }

    /// Per-class sample counts (length `classes`).
    public func labelCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: classes)
        for l in labels where l >= 0 && Int(l) < classes { counts[Int(l)] += 1 }
        return counts
    }

    /// A short, stable identity of the content: shape, and CRC-32 of pixels and of labels.
    /// The ledger uses it to recognise the same data across runs.
    public func fingerprint() -> String {
        var pixelCRC: UInt32 = 0
        switch storage {
        case .bytes(let b): pixelCRC = b.withUnsafeBytes { crc32Bytes($0) }
        case .floats(let f): pixelCRC = f.withUnsafeBytes { crc32Bytes($0) }
        }
        let labelCRC = labels.withUnsafeBytes { crc32Bytes($0) }
        let kind = isRawBytes ? "u8" : "f32"
        return "\(count)x\(channels)x\(height)x\(width)-\(kind)-crc32:\(hex8(pixelCRC)):\(hex8(labelCRC))"
    }

    /// Per-channel mean and standard deviation over all pixels (in [0, 1] units).
    func computeChannelStats() -> ([Float], [Float]) {
        let plane = height * width, size = imageSize
        guard count > 0, plane > 0 else {
            return (Array(repeating: 0, count: channels), Array(repeating: 1, count: channels))
        }
        var sum = [Double](repeating: 0, count: channels), sq = [Double](repeating: 0, count: channels)
        func accumulate(_ value: (Int) -> Double) {
            for i in 0 ..< count {
                for c in 0 ..< channels {
                    var s = 0.0, q = 0.0
                    let base = i * size + c * plane
                    for p in 0 ..< plane { let v = value(base + p); s += v; q += v * v }
                    sum[c] += s; sq[c] += q
                }
            }
        }
        switch storage {
        case .bytes(let b): b.withUnsafeBufferPointer { p in accumulate { Double(p[$0]) / 255 } }
        case .floats(let f): f.withUnsafeBufferPointer { p in accumulate { Double(p[$0]) } }
        }
        let n = Double(count * plane)
        let mean = sum.map { $0 / n }
        let std = zip(sq, mean).map { q, m in max((q / n - m * m).squareRoot(), 1e-6) }
        return (mean.map(Float.init), std.map(Float.init))
    }
}

/// A train set and a test set of one dataset.
public struct DatasetSplit: Sendable {
    /// The training samples.
    public var train: Dataset
    /// The held-out test samples (may be empty for an npz release without a test file).
    public var test: Dataset

    /// Pairs a train and a test set.
    public init(train: Dataset, test: Dataset) { self.train = train; self.test = test }
}

func hex8(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 8 - s.count) + s
}
