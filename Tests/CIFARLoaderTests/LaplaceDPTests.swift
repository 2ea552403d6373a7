@testable import CIFARLoader
import Foundation
import XCTest

final class LaplaceDPTests: XCTestCase {
    /// 10^6 draws of Laplace(0, b) through the same generator and inverse CDF the mechanism uses.
    private func draws(scale b: Double, seed: UInt64, count: Int = 1_000_000) -> [Double] {
        var rng = SeededGenerator(seed: seed)
        return (0 ..< count).map { _ in LaplaceDP.laplace(rng.nextOpenUnit(), scale: b) }
    }

    func testInverseCDFByHand() {
        // F⁻¹(u) = −b·sgn(u−½)·ln(1−2|u−½|): u = 0.75 → b·ln 2, u = 0.25 → −b·ln 2, u = ½ → 0.
        XCTAssertEqual(LaplaceDP.laplace(0.75, scale: 2), 2 * log(2.0), accuracy: 1e-15)
        XCTAssertEqual(LaplaceDP.laplace(0.25, scale: 2), -2 * log(2.0), accuracy: 1e-15)
        XCTAssertEqual(LaplaceDP.laplace(0.5, scale: 2), 0)
        XCTAssertEqual(LaplaceDP.cdf(LaplaceDP.laplace(0.9, scale: 3), scale: 3), 0.9, accuracy: 1e-12)
        // The generator's extreme uniforms are 2^-53 and 1 − 2^-53, strictly inside (0, 1), and give
        // finite noise: |x| = b·52·ln 2 ≈ 36.04·b at most.
        let lowest = SeededGenerator.openUnit(bits: 0), highest = SeededGenerator.openUnit(bits: .max)
        XCTAssertEqual(lowest, 0x1p-53); XCTAssertEqual(highest, 1 - 0x1p-53)
        XCTAssertLessThan(highest, 1)
        XCTAssertEqual(LaplaceDP.laplace(highest, scale: 1), 52 * log(2.0), accuracy: 1e-9)
        XCTAssertEqual(LaplaceDP.laplace(lowest, scale: 1), -52 * log(2.0), accuracy: 1e-9)
    }

    /// Mean ≈ 0 and mean absolute deviation ≈ Δ/ε within 2% over 10^6 draws, for both units.
    func testMeanAndMeanAbsoluteDeviationMatchDeltaOverEpsilon() {
        let d = 784
        for (unit, epsilon) in [(LaplaceDP.Unit.pixel, 0.5), (.pixel, 4), (.image, 8)] {
            let b = LaplaceDP(epsilon: epsilon, unit: unit, seed: 0).scale(imageSize: d)
            XCTAssertEqual(b, unit == .pixel ? 1 / epsilon : Double(d) / epsilon)
            let xs = draws(scale: b, seed: 11)
            let mean = xs.reduce(0, +) / Double(xs.count)
            let mad = xs.reduce(0) { $0 + abs($1) } / Double(xs.count)
            // Standard error of the mean is √2·b/1000; 0.01·b is 7 standard errors.
            XCTAssertEqual(mean, 0, accuracy: 0.01 * b, "\(unit) ε=\(epsilon): mean \(mean)")
            XCTAssertEqual(mad / b, 1, accuracy: 0.02, "\(unit) ε=\(epsilon): mean |x| = \(mad), Δ/ε = \(b)")
        }
    }

    /// Kolmogorov–Smirnov statistic against the Laplace CDF below the 1% critical value
    /// 1.628/√n (asymptotic Kolmogorov distribution) for n = 10^6.
    func testKolmogorovSmirnovAgainstTheLaplaceCDF() {
        let b = 0.7
        let xs = draws(scale: b, seed: 2024).sorted()
        let n = Double(xs.count)
        var dStat = 0.0
        for (i, x) in xs.enumerated() {
            let f = LaplaceDP.cdf(x, scale: b)
            dStat = max(dStat, f - Double(i) / n, Double(i + 1) / n - f)
        }
        let critical = 1.628 / n.squareRoot()
        XCTAssertLessThan(dStat, critical, "KS statistic \(dStat) vs 1% critical value \(critical)")
        // The test has power: the same draws against a Laplace of scale 0.72 (3% off) fail it.
        var wrong = 0.0
        for (i, x) in xs.enumerated() {
            let f = LaplaceDP.cdf(x, scale: 0.72)
            wrong = max(wrong, f - Double(i) / n, Double(i + 1) / n - f)
        }
        XCTAssertGreaterThan(wrong, critical, "a 3% wrong scale must be detected")
    }

    func testPrivatizeClipsAddsNoiseOfTheRightScaleAndIsSeeded() {
        // 2×2 images (d = 4) at 0.5, unit image, ε = 400 → scale d/ε = 0.01: clipping never triggers.
        let d = 4
        let clean = [Float](repeating: 0.5, count: 250_000 * d)
        var noised = clean
        let dp = LaplaceDP(epsilon: 400, unit: .image, seed: 77)
        dp.privatize(&noised, imageSize: d)
        let mad = zip(noised, clean).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(clean.count)
        XCTAssertEqual(mad / 0.01, 1, accuracy: 0.02, "mean |noise| \(mad) should be Δ/ε = 0.01")
        var again = clean
        dp.privatize(&again, imageSize: d)
        XCTAssertEqual(again, noised, "same seed, same noise")
        var other = clean
        LaplaceDP(epsilon: 400, unit: .image, seed: 78).privatize(&other, imageSize: d)
        XCTAssertNotEqual(other, noised, "different seed, different noise")

        // Out-of-range input is clipped before and after: values end in [0, 1].
        var wild: [Float] = [-3, 7, 0.2, 1.5] + [Float](repeating: 0.9, count: 1000)
        LaplaceDP(epsilon: 0.5, unit: .pixel, seed: 1).privatize(&wild, imageSize: 4)
        XCTAssert(wild.allSatisfy { $0 >= 0 && $0 <= 1 })
        XCTAssert(wild.contains(0) && wild.contains(1), "scale 2 noise saturates some values at each end")
    }

    func testUnitParsingAndGuaranteeText() throws {
        XCTAssertEqual(try LaplaceDP.Unit.parse("Image"), .image)
        assertLoaderError(try LaplaceDP.Unit.parse("row"), contains: ["'row'", "pixel, image"])
        XCTAssert(LaplaceDP.Unit.pixel.guarantee.contains("d·ε"))
        XCTAssert(LaplaceDP.Unit.image.guarantee.contains("destroys"))
    }
}
