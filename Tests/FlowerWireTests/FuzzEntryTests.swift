// Seeded random mutation of valid frames through the whole receive path (WireFuzzing.exercise):
// a short run in the debug suite, 10^6 inputs in the release run. No input may crash.
import FlowerCore
@testable import FlowerWire
@testable import FlowerWireCodec
import FlowerZlib
@testable import WireFuzzEntry
import XCTest

/// Valid frames of every message kind: the seeds the mutator starts from.
func fuzzSeeds() throws -> [[UInt8]] {
    let model = try testModel(count: 12)
    let config: Config = ["lr": .double(0.1), "n": .int(3), "s": .string("x"), "b": .bool(true), "y": .bytes([1])]
    let server: [ServerMessage] = [
        .challenge(Challenge(protocolVersion: 1, nonce: Array(0 ..< 32), authRequired: true, maxFrameBytes: 1 << 20)),
        .welcome(Welcome(protocolVersion: 1, sessionID: "s1", zlib: true)),
        .refusal(Refusal(reason: .serverFull, message: "full")),
        .getParameters(GetParametersIns(config: config)),
        .fit(FitIns(round: 2, parameters: model, config: config)),
        .evaluate(EvaluateIns(round: 2, parameters: model, config: config)),
        .reconnect(seconds: 3, reason: "r"), .finish(roundsCompleted: 4, reason: "f"),
    ]
    let client: [ClientMessage] = [
        .hello(Hello(protocolVersion: 1, clientID: "c", partition: 2, acceptsZlib: true, authProof: [1, 2], agent: "a", maxFrameBytes: 9)),
        .parametersRes(ParametersRes(parameters: model)),
        .fitRes(FitRes(status: Status(code: .fitFailed, message: "m"), round: 2, parameters: model, numExamples: 5, metrics: config)),
        .evaluateRes(EvaluateRes(round: 2, loss: 0.5, numExamples: 5, metrics: config)),
        .goodbye(reason: "bye"),
    ]
    var seeds = try server.map { try WireEncoder.frame($0) } + client.map { try WireEncoder.frame($0) }
    seeds.append(try WireEncoder.frame(.fit(FitIns(round: 1, parameters: try testModel(count: 4000))), compression: false))
    let compressible = try Parameters(shapes: [("z", [2000])], values: [Float](repeating: 0, count: 2000))
    seeds.append(try WireEncoder.frame(.fit(FitIns(round: 1, parameters: compressible)), compression: true))
    // TensorScanner's paths in shapes our encoder never produces: Parameters split across
    // occurrences, a repeated oneof member, a Tensor whose data comes twice.
    let a = PB.tensor(name: "a", shape: [1], data: [0, 0, 0x80, 0x3f]), b = PB.tensor(name: "b", shape: [1], data: [0, 0, 0, 0x40])
    seeds.append(FrameEncoder.frame(PB.bytes(5, PB.bytes(2, PB.bytes(1, a)) + PB.field(1, 1) + PB.bytes(2, PB.bytes(1, b)))))
    seeds.append(FrameEncoder.frame(PB.bytes(5, PB.bytes(2, PB.bytes(1, a))) + PB.bytes(6, PB.field(1, 2) + PB.bytes(2, PB.bytes(1, b)))))
    seeds.append(FrameEncoder.frame(PB.fitIns([a + PB.bytes(4, [1, 2, 3, 4])])))
    seeds += limitSeeds()
    return seeds
}

/// Frames at and just past the WireLimits bounds, so mutations explore both sides of each check.
func limitSeeds() -> [[UInt8]] {
    let entry = PB.bytes(5, PB.bytes(1, [0x6b]) + PB.bytes(2, PB.field(3, 1)))
    let shape32 = PB.tensor(name: "s", shape: [Int64](repeating: 1, count: 32), data: [0, 0, 0x80, 0x3f])
    let shape33 = PB.bytes(1, [0x73]) + PB.bytes(2, [UInt8](repeating: 1, count: 33))
    return [
        FrameEncoder.frame(PB.bytes(3, PB.field(2, 1) + Array(repeating: entry, count: 300).flatMap { $0 })),  // many metrics
        FrameEncoder.frame(PB.fitIns([shape32])), FrameEncoder.frame(PB.fitIns([shape33])),
        FrameEncoder.frame(PB.bytes(1, PB.field(1, 1) + PB.bytes(2, [UInt8](repeating: 0x63, count: 256)))),  // client_id at 256
        FrameEncoder.frame(PB.bytes(1, PB.field(1, 1) + PB.bytes(2, Array("a\nb".utf8)) + PB.bytes(6, [0x61, 0, 0x62]))),
        FrameEncoder.frame(PB.bytes(3, PB.field(2, UInt64(Int64.max)) + PB.field(4, UInt64(Int64.max)))),
        FrameEncoder.frame(PB.bytes(3, Array(repeating: PB.field(15, 0), count: 2_000).flatMap { $0 })),  // unknown fields
        FrameEncoder.frame(PB.bytes(7, PB.field(1, UInt64(UInt32.max)))),
        FrameEncoder.frame((try? Zlib.compress([UInt8](repeating: 0, count: 1 << 18), level: 9)) ?? [], compressed: true),  // a bomb
    ]
}

/// One mutated input: 1-8 edits (bit flips, byte sets, inserts, deletes, splices, length rewrites).
func mutate(_ seed: [UInt8], _ rng: inout SplitMix64, seeds: [[UInt8]]) -> [UInt8] {
    var b = [UInt8(truncatingIfNeeded: rng.next())] + seed
    for _ in 0 ..< Int(rng.next() % 8) + 1 {
        let i = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count))
        switch rng.next() % 7 {
        case 0: if !b.isEmpty { b[i] ^= UInt8(1) << (rng.next() % 8) }
        case 1: if !b.isEmpty { b[i] = [0, 0xff, 0x7f, 0x80, 1][Int(rng.next() % 5)] }
        case 2: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
        case 3: if !b.isEmpty { b.remove(at: i) }
        case 4: b = Array(b.prefix(i))
        case 5: if let other = seeds.randomElement(using: &rng) { b += other.prefix(Int(rng.next() % 64)) }
        default: if b.count > 5 { b[2 + Int(rng.next() % 4)] = UInt8(truncatingIfNeeded: rng.next()) }
        }
    }
    return b
}

func runMutations(_ count: Int, seed: UInt64) throws -> (inputs: Int, decoded: Int, frames: Int, mismatches: [String]) {
    let seeds = try fuzzSeeds()
    var rng = SplitMix64(seed: seed)
    var decoded = 0, frames = 0
    var mismatches: [String] = []
    for n in 0 ..< count {
        let input = mutate(seeds[n % seeds.count], &rng, seeds: seeds)
        let outcome = input.withUnsafeBytes { WireFuzzing.run($0) }
        decoded += outcome.decoded
        frames += outcome.nioFrames
        if let m = outcome.mismatch, mismatches.count < 5 { mismatches.append("\(m): \(input.prefix(40))") }
    }
    return (count, decoded, frames, mismatches)
}

final class FuzzEntryTests: XCTestCase {
    func testSeedsDecodeCompletely() throws {
        let seeds = try fuzzSeeds()
        for (i, seed) in seeds.enumerated() {
            // Chunk byte 0 → chunks of 4 bytes. Every seed decodes; a few (Challenge/Hello share field
            // numbers) also parse as the other envelope, which is proto3 behaviour, not an error.
            let decoded = ([0] + seed).withUnsafeBytes { WireFuzzing.exercise($0) }
            if i < seeds.count - limitSeeds().count {
                XCTAssertTrue((1 ... 2).contains(decoded), "seed \(i) decoded \(decoded) times")
            }
        }
    }

    /// A short run in the debug suite (the NIO decoder in an EmbeddedChannel is slow at -Onone);
    /// the release class below runs 10^6.
    func testThreeThousandMutationsDoNotCrash() throws {
        let (inputs, decoded, frames, mismatches) = try runMutations(3_000, seed: 42)
        XCTAssertEqual(inputs, 3_000)
        XCTAssertGreaterThan(decoded, 150, "mutations should still reach the protobuf mapping often")
        XCTAssertGreaterThan(frames, 600, "the NIO decoder should see many frames")
        XCTAssertEqual(mismatches, [], "the decoder gives other frames in chunks than whole")
    }

    /// The decoder gives the same frames from every seed fed in 4-, 28- and 64-byte chunks as fed
    /// whole, and the limit seeds are refused (or decoded) by the payload checks without crashing.
    func testChunkedAndWholeInputAgreeOnTheSeeds() throws {
        for (i, seed) in try fuzzSeeds().enumerated() {
            for chunk: UInt8 in [0, 6, 15] {
                let outcome = ([chunk] + seed + seed).withUnsafeBytes { WireFuzzing.run($0) }
                XCTAssertNil(outcome.mismatch, "seed \(i), chunk \(chunk + 1)")
                XCTAssertEqual(outcome.nioFrames, 2, "seed \(i): two frames in")
            }
        }
    }
}

final class FuzzEntryReleaseTests: XCTestCase {
    override func setUpWithError() throws {
        #if DEBUG
        throw XCTSkip("release-only: run swift test -c release --filter ReleaseTests")
        #endif
    }

    func testOneMillionMutationsDoNotCrash() throws {
        let start = ContinuousClock.now
        let (inputs, decoded, frames, mismatches) = try runMutations(1_000_000, seed: 2026)
        XCTAssertEqual(inputs, 1_000_000)
        XCTAssertGreaterThan(decoded, 50_000)
        XCTAssertEqual(mismatches, [])
        print("fuzz mutations: \(inputs) inputs, \(frames) NIO frames, \(decoded) messages decoded in \(ContinuousClock.now - start)")
    }
}
