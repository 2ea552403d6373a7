// ImageLayout: where element (n, c, y, x) of a 4-D float32 image batch lives.

/// Shape and strides of a batch of images. Kernels take this instead of assuming one layout:
/// the public/model input is NCHW; activations inside the CNN are channel-major "CNHW"
/// (channel c of every image contiguous) so each convolution is a single GEMM over the batch.
/// Rows (x) are always contiguous: element (n, c, y, x) is at n*batchStride + c*channelStride + y*width + x.
public struct ImageLayout: Equatable, Sendable {
    /// Images in the batch.
    public var batch: Int
    /// Channels per image.
    public var channels: Int
    /// Rows per image.
    public var height: Int
    /// Columns per image.
    public var width: Int
    /// Distance between image n and n+1 (same channel).
    public var batchStride: Int
    /// Distance between channel c and c+1 (same image).
    public var channelStride: Int

    /// NCHW: images one after another, channels within an image.
    public static func nchw(_ n: Int, _ c: Int, _ h: Int, _ w: Int) -> ImageLayout {
        ImageLayout(batch: n, channels: c, height: h, width: w, batchStride: c * h * w, channelStride: h * w)
    }

    /// CNHW: channel-major; the [C, N*H*W] matrix a convolution GEMM produces.
    public static func cnhw(_ n: Int, _ c: Int, _ h: Int, _ w: Int) -> ImageLayout {
        ImageLayout(batch: n, channels: c, height: h, width: w, batchStride: h * w, channelStride: n * h * w)
    }

    /// Pixels per plane (H*W).
    public var plane: Int { height * width }
    /// Total elements (N*C*H*W).
    public var count: Int { batch * channels * height * width }
    /// Offset of element (n, c, y, x).
    @inlinable public func offset(_ n: Int, _ c: Int, _ y: Int, _ x: Int) -> Int {
        n * batchStride + c * channelStride + y * width + x
    }
}
