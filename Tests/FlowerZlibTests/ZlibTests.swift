import FlowerZlib
import Foundation
import Synchronization
import XCTest

final class ZlibTests: XCTestCase {
    /// 10 MB of float32 (a smooth signal plus noise, like weights) survives compress/decompress.
    func testRoundTripTenMegabytesOfFloats() throws {
        var rng = SplitMix(seed: 7)
        let floats: [Float] = (0 ..< 2_621_440).map { i in Float(sin(Double(i) * 0.001)) + Float(rng.unit() - 0.5) * 0.01 }
        let packed = try floats.withUnsafeBytes { try Zlib.compress($0, level: 1) }
        XCTAssertLessThan(packed.count, floats.count * 4, "float data should compress at least a little")
        let unpacked = try Zlib.decompress(packed, format: .zlib, expectedSize: floats.count * 4)
        XCTAssertEqual(unpacked.count, floats.count * 4)
        let back = unpacked.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(back, floats)
    }

    func testGzipRoundTripAndAutoDetect() throws {
        let text = Array(String(repeating: "federated ", count: 1000).utf8)
        let gz = try Zlib.compress(text, level: 6, format: .gzip)
        XCTAssertEqual(Array(gz.prefix(2)), [0x1f, 0x8b], "gzip magic")
        XCTAssertEqual(try Zlib.decompress(gz, format: .auto), text)
        XCTAssertEqual(try Zlib.decompress(gz + gz, format: .gzip), text + text, "concatenated gzip members")
    }

    func testCorruptStreamIsAClearError() throws {
        var packed = try Zlib.compress(Array(repeating: 42, count: 100_000))
        packed[packed.count / 2] ^= 0xFF
        packed[2] ^= 0x55
        XCTAssertThrowsError(try Zlib.decompress(packed, format: .zlib)) { error in
            guard let e = error as? ZlibError, case .corrupt = e else {
                return XCTFail("expected ZlibError.corrupt, got \(error)")
            }
            XCTAssertTrue("\(e)".contains("corrupt"), "\(e)")
        }
        XCTAssertThrowsError(try Zlib.decompress([0x00, 0x01, 0x02, 0x03], format: .zlib)) { error in
            XCTAssertEqual(error as? ZlibError, .corrupt("incorrect header check"))
        }
    }

    func testTruncatedStreamIsAClearError() throws {
        let packed = try Zlib.compress((0 ..< 50_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        XCTAssertThrowsError(try Zlib.decompress(Array(packed.prefix(packed.count / 2)), format: .zlib)) { error in
            XCTAssertEqual(error as? ZlibError, .truncated)
        }
    }

    /// A small stream that inflates far beyond the limit is refused without inflating it all.
    func testDecompressionLimitStopsABomb() throws {
        let bomb = try Zlib.compress([UInt8](repeating: 0, count: 20_000_000), level: 9)
        XCTAssertLessThan(bomb.count, 40_000)
        XCTAssertThrowsError(try Zlib.decompress(bomb, format: .zlib, limit: 1_000_000)) { error in
            XCTAssertEqual(error as? ZlibError, .tooLarge(limit: 1_000_000))
        }
        // Exactly at the limit is fine.
        let exact = try Zlib.compress([UInt8](repeating: 3, count: 4096))
        XCTAssertEqual(try Zlib.decompress(exact, format: .zlib, limit: 4096).count, 4096)
        XCTAssertThrowsError(try Zlib.decompress(exact, format: .zlib, limit: 4095))
    }

    func testCRC32MatchesKnownValue() {
        // CRC-32 of "123456789" is 0xCBF43926 (the standard check value).
        let crc = Array("123456789".utf8).withUnsafeBytes { Zlib.crc32($0) }
        XCTAssertEqual(crc, 0xCBF4_3926)
    }
}

/// Small deterministic generator for test data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// Real zlib bombs against the shared `InflateBudget`.
final class InflateBudgetTests: XCTestCase {
    /// 64 MiB of zeros deflated at level 9: about 64 KB on the wire.
    static let bomb: [UInt8] = {
        (try? Zlib.compress([UInt8](repeating: 0, count: 64 << 20), level: 9)) ?? []
    }()

    func testABombStopsAtTheLimitAndGivesItsBudgetBack() throws {
        XCTAssertLessThan(Self.bomb.count, 100_000)
        let budget = InflateBudget(capacity: 8 << 20)
        XCTAssertThrowsError(try Zlib.decompress(Self.bomb, format: .zlib, limit: 4 << 20, budget: budget)) { error in
            XCTAssertEqual(error as? ZlibError, .tooLarge(limit: 4 << 20))
        }
        XCTAssertLessThanOrEqual(budget.highWater, 4 << 20, "output grew past the limit")
        XCTAssertEqual(budget.inUse, 0, "a refused bomb must give its reservation back")
    }

    /// Eight bombs at once (the 525 MB peak): together they never hold more than the
    /// budget, each is refused (too large, or no room), and the budget is whole again after.
    func testEightBombsAtOnceShareOneBudget() {
        let limit = 16 << 20
        let budget = InflateBudget(capacity: limit)
        let outcomes = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            do {
                _ = try Zlib.decompress(Self.bomb, format: .zlib, limit: limit, budget: budget)
                outcomes.withLock { $0.append("inflated") }
            } catch ZlibError.tooLarge {
                outcomes.withLock { $0.append("too large") }
            } catch ZlibError.budgetExhausted {
                outcomes.withLock { $0.append("no budget") }
            } catch {
                outcomes.withLock { $0.append("\(error)") }
            }
        }
        let seen = outcomes.withLock { $0 }
        XCTAssertEqual(seen.count, 8)
        XCTAssertTrue(seen.allSatisfy { $0 == "too large" || $0 == "no budget" }, "\(seen)")
        XCTAssertLessThanOrEqual(budget.highWater, limit, "8 bombs held \(budget.highWater) bytes at once; budget \(limit)")
        XCTAssertEqual(budget.inUse, 0)
        print("inflate budget: 8 concurrent bombs (64 MiB of zeros each, limit 16 MiB): peak output \(budget.highWater >> 20) MiB (without the budget: up to \(8 * limit >> 20) MiB); outcomes \(seen)")
    }

    /// A frame that cannot get room is refused at once, not queued; the room returns on release.
    func testNoRoomMeansRefusedNowAndTheReservationLastsUntilRelease() throws {
        let budget = InflateBudget(capacity: 1 << 20)
        XCTAssertTrue(budget.reserve(1 << 20))  // another connection's frame in flight
        let honest = try Zlib.compress([UInt8](repeating: 7, count: 200_000))
        XCTAssertThrowsError(try Zlib.decompress(honest, format: .zlib, limit: 1 << 20, budget: budget)) { error in
            guard case .budgetExhausted(let needed, let capacity)? = error as? ZlibError else { return XCTFail("got \(error)") }
            XCTAssertGreaterThan(needed, 0)
            XCTAssertEqual(capacity, 1 << 20)
        }
        budget.release(1 << 20)
        let out = try Zlib.decompress(honest, format: .zlib, limit: 1 << 20, budget: budget)
        XCTAssertEqual(out.bytes, [UInt8](repeating: 7, count: 200_000))
        XCTAssertGreaterThanOrEqual(budget.inUse, 200_000, "the output stays charged while it is used")
        out.release()
        XCTAssertEqual(budget.inUse, 0)
        // A limit above the capacity raises it, so one frame at the limit always fits alone.
        XCTAssertEqual(try Zlib.decompress(honest, format: .zlib, limit: 4 << 20, budget: InflateBudget(capacity: 1024)).bytes.count, 200_000)
    }
}
