@testable import CIFARLoader
import TestSupport
import Foundation
import XCTest

final class PrivacyLedgerTests: XCTestCase {
    func testRefusesOverBudgetAndSurvivesARestart() throws {
        let dir = try temporaryFolder()
        var ledger = try PrivacyLedger(directory: dir)
        XCTAssertEqual(ledger.spent, 0)
        XCTAssertEqual(try ledger.record(epsilon: 1, unit: .pixel, pixelsPerImage: 784, seed: 1, fingerprint: "A", budget: 2.5), .charged(1))
        XCTAssertEqual(try ledger.record(epsilon: 1, unit: .pixel, pixelsPerImage: 784, seed: 2, fingerprint: "A", budget: 2.5), .charged(1))
        assertLoaderError(try ledger.record(epsilon: 1, unit: .pixel, pixelsPerImage: 784, seed: 3, fingerprint: "A", budget: 2.5),
                          contains: ["already spent epsilon 2", "epsilon 1 more", "3 > --privacy-budget 2.5"])
        XCTAssertEqual(ledger.spent, 2, "a refused release spends nothing")

        // A new process: the file remembers, and still refuses.
        var reopened = try PrivacyLedger(directory: dir)
        XCTAssertEqual(reopened.spent, 2)
        XCTAssertEqual(reopened.releases.map(\.seed), ["1", "2"])
        XCTAssertEqual(reopened.releases.first?.fingerprint, "A")
        XCTAssertFalse(reopened.releases.first?.time.isEmpty ?? true)
        assertLoaderError(try reopened.record(epsilon: 0.6, unit: .pixel, pixelsPerImage: 784, seed: 4, fingerprint: "A", budget: 2.5),
                          contains: ["privacy budget exceeded"])
        XCTAssertEqual(try reopened.record(epsilon: 0.5, unit: .pixel, pixelsPerImage: 784, seed: 4, fingerprint: "A", budget: 2.5), .charged(0.5))
    }

    func testIdenticalReleaseIsReusedWithoutSpending() throws {
        let dir = try temporaryFolder()
        var ledger = try PrivacyLedger(directory: dir)
        XCTAssertEqual(try ledger.record(epsilon: 2, unit: .pixel, pixelsPerImage: 784, seed: 9, fingerprint: "F", budget: 2), .charged(2))
        var restarted = try PrivacyLedger(directory: dir)
        XCTAssertEqual(try restarted.record(epsilon: 2, unit: .pixel, pixelsPerImage: 784, seed: 9, fingerprint: "F", budget: 2), .reused)
        XCTAssertEqual(restarted.spent, 2)
        XCTAssertEqual(restarted.releases.count, 1)
        // Same ε, new seed: new noise, new spending, refused here.
        assertLoaderError(try restarted.record(epsilon: 2, unit: .pixel, pixelsPerImage: 784, seed: 10, fingerprint: "F", budget: 2),
                          contains: ["budget exceeded"])
    }

    func testUnitsConvertHonestly() throws {
        // Image ledger: a pixel-level ε release is only d·ε per image.
        var imageLedger = try PrivacyLedger(directory: try temporaryFolder())
        try imageLedger.record(epsilon: 1, unit: .image, pixelsPerImage: 4, seed: 1, fingerprint: "X", budget: 10)
        XCTAssertEqual(try imageLedger.record(epsilon: 0.5, unit: .pixel, pixelsPerImage: 4, seed: 2, fingerprint: "X", budget: 10), .charged(2))
        XCTAssertEqual(imageLedger.spent, 3)
        // Pixel ledger: an image-level ε release is also pixel-level ε.
        var pixelLedger = try PrivacyLedger(directory: try temporaryFolder())
        try pixelLedger.record(epsilon: 1, unit: .pixel, pixelsPerImage: 784, seed: 1, fingerprint: "X", budget: 10)
        XCTAssertEqual(try pixelLedger.record(epsilon: 3, unit: .image, pixelsPerImage: 784, seed: 2, fingerprint: "X", budget: 10), .charged(3))
        XCTAssertEqual(pixelLedger.unit, .pixel)
    }

    func testDamagedLedgerAndBadParametersAreClearErrors() throws {
        let dir = try temporaryFolder()
        try writeFile("\(dir)/privacy-ledger.json", Array("{\"releases\": [".utf8))
        assertLoaderError(try PrivacyLedger(directory: dir), contains: ["privacy-ledger.json", "restore it rather than delete it"])
        var fresh = try PrivacyLedger(directory: try temporaryFolder())
        assertLoaderError(try fresh.record(epsilon: 0, unit: .pixel, pixelsPerImage: 1, seed: 1, fingerprint: "", budget: 1), contains: ["--dp-epsilon"])
        assertLoaderError(try fresh.record(epsilon: 1, unit: .pixel, pixelsPerImage: 1, seed: 1, fingerprint: "", budget: -1), contains: ["--privacy-budget"])
    }
}
