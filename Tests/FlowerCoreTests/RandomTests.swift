import FlowerCore
import XCTest

final class RandomTests: XCTestCase {
    func testSplitMix64MatchesTheReferenceSequence() {
        // Reference values of splitmix64.c (Vigna) seeded with 0.
        var g = SplitMix64(seed: 0)
        XCTAssertEqual(g.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(g.next(), 0x6E78_9E6A_A1B9_65F4)
    }

    func testDerivedSeedsDifferPerStream() {
        let seeds = Set((0 ..< 1000).map { SplitMix64.derive(seed: 42, stream: $0) })
        XCTAssertEqual(seeds.count, 1000)
        XCTAssertEqual(SplitMix64.derive(seed: 42, stream: 5), SplitMix64.derive(seed: 42, stream: 5))
    }
}
