@testable import CIFARLoader
import Foundation
import XCTest

final class DatasetTests: XCTestCase {
    /// Two 2-channel 1×2 images: bytes 0, 51, 102, 153 | 204, 255, 0, 255.
    private let data = Dataset(bytes: [0, 51, 102, 153, 204, 255, 0, 255], labels: [1, 0], channels: 2, height: 1, width: 2,
                               classes: 2, name: "t", channelMean: [0.5, 0.25], channelStd: [0.5, 0.25])

    func testImagesConvertOnlyTheRequestedSamplesToUnitFloats() {
        XCTAssertEqual(data.images(at: [1]), [0.8, 1, 0, 1])
        XCTAssertEqual(data.images(at: [1, 0]), [0.8, 1, 0, 1, 0, 0.2, 0.4, 0.6])
        XCTAssertEqual(data.images(at: []), [])
        XCTAssertTrue(data.isRawBytes)
    }

    func testNormalizeAppliesPerChannelMeanAndStd() {
        // Channel 0: (x − 0.5)/0.5; channel 1: (x − 0.25)/0.25.
        let out = data.images(at: [0], normalize: true)
        let expected: [Float] = [-1, (0.2 - 0.5) / 0.5, (0.4 - 0.25) / 0.25, (0.6 - 0.25) / 0.25]
        for (a, b) in zip(out, expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    func testSubsetCopiesOnlyItsSamplesAndKeepsBytes() {
        let sub = data.subset([1])
        XCTAssertEqual(sub.count, 1); XCTAssertEqual(sub.labels, [0])
        XCTAssertEqual(sub.allImages(), [0.8, 1, 0, 1])
        XCTAssertTrue(sub.isRawBytes)
        XCTAssertEqual(sub.channelMean, data.channelMean)
        if case .bytes(let b) = sub.storage { XCTAssertEqual(b, [204, 255, 0, 255]) } else { XCTFail("storage became floats") }
        let floats = Dataset(floats: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], labels: [1, 0], channels: 2, height: 1, width: 2, classes: 2, name: "f")
        XCTAssertEqual(floats.subset([1]).allImages(), [0.5, 0.6, 0.7, 0.8])
    }

    func testChannelStatsAndFingerprint() {
        let d = Dataset(bytes: [0, 255, 0, 255], labels: [0, 1], channels: 1, height: 1, width: 2, classes: 2, name: "s")
        XCTAssertEqual(d.channelMean[0], 0.5, accuracy: 1e-6); XCTAssertEqual(d.channelStd[0], 0.5, accuracy: 1e-6)
        XCTAssertEqual(d.fingerprint(), d.subset([0, 1]).fingerprint())
        XCTAssertNotEqual(d.fingerprint(), d.subset([1, 0]).fingerprint())
        XCTAssert(d.fingerprint().hasPrefix("2x1x1x2-u8-crc32:"))
        XCTAssertEqual(d.labelCounts(), [1, 1])
    }

    func testDatasetKindParsing() throws {
        XCTAssertEqual(try DatasetKind.parse("fashion-mnist"), .fashionMNIST)
        XCTAssertEqual(try DatasetKind.parse("CIFAR10"), .cifar10)
        XCTAssertEqual(try DatasetKind.parse("npz"), .npz)
        assertLoaderError(try DatasetKind.parse("imagenet"), contains: ["'imagenet'", "fashion-mnist, mnist, cifar10, npz"])
    }
}
