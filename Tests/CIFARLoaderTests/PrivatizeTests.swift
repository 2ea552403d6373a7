@testable import CIFARLoader
import TestSupport
import Foundation
import XCTest

final class PrivatizeTests: XCTestCase {
    private let data = Dataset(bytes: (0 ..< 50 * 16).map { UInt8($0 % 256) }, labels: (0 ..< 50).map { Int32($0 % 3) },
                               channels: 1, height: 4, width: 4, classes: 3, name: "p")

    func testChargesTheLedgerThenNoisesAndReusesIdenticalReleases() throws {
        let ledgerDir = try temporaryFolder()
        let request = PrivacyRequest(epsilon: 2, unit: .pixel, budget: 3, seed: 5, ledgerDirectory: ledgerDir)
        let first = try privatize(data, request: request)
        XCTAssertEqual(first.outcome, .charged(2)); XCTAssertEqual(first.spent, 2)
        XCTAssertFalse(first.dataset.isRawBytes)
        XCTAssertEqual(first.dataset.labels, data.labels)
        let noised = first.dataset.allImages(), clean = data.allImages()
        XCTAssert(noised.allSatisfy { $0 >= 0 && $0 <= 1 })
        XCTAssertNotEqual(noised, clean)
        // The same flags after a restart: the same bytes, nothing more spent.
        let again = try privatize(data, request: request)
        XCTAssertEqual(again.outcome, .reused)
        XCTAssertEqual(again.dataset.allImages(), noised)
        XCTAssertEqual(again.spent, 2)
        // A new seed is a new release: 2 + 2 > 3 is refused before any noise is produced.
        var fresh = request; fresh.seed = 6
        assertLoaderError(try privatize(data, request: fresh), contains: ["budget exceeded", "3"])
        XCTAssertEqual(try PrivacyLedger(directory: ledgerDir).releases.count, 1)
    }

    func testInvalidRequestsAreRefusedBeforeTouchingTheLedger() throws {
        let dir = try temporaryFolder()
        assertLoaderError(try privatize(data, request: PrivacyRequest(epsilon: -1, unit: .pixel, budget: 1, seed: 1, ledgerDirectory: dir)),
                          contains: ["--dp-epsilon"])
        assertLoaderError(try privatize(data, request: PrivacyRequest(epsilon: 2, unit: .pixel, budget: 1, seed: 1, ledgerDirectory: dir)),
                          contains: ["exceeds --privacy-budget"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/privacy-ledger.json"))
    }
}
