// Encode once, send to all: a round's FitIns (and EvaluateIns) is the same for every sampled
// client, so each transport encodes it once and hands every client the same bytes. Both the
// native wire (frames) and the Flower-protocol port (protobuf messages) keep one of these.
import Synchronization

/// The encoded form of the last few broadcast instructions, keyed by the instruction.
///
/// An instruction is recognised by its kind, round, config, layout and the identity of its
/// parameter buffer (the cache keeps the instruction alive, so that buffer cannot be reused for
/// other values while its encoding is cached). `variant` tells apart encodings of the same
/// instruction that differ per receiver (e.g. compressed or not).
public final class EncodeOnce<Encoded: Sendable>: Sendable {
    /// What is broadcast.
    public enum Instruction: Sendable {
        case fit(FitIns)
        case evaluate(EvaluateIns)
    }

    private struct Entry: Sendable {
        let instruction: Instruction
        let variant: Int
        let encoded: Encoded
    }
    private let entries = Mutex<[Entry]>([])
    private let built = Atomic<Int>(0)
    private let reused = Atomic<Int>(0)
    private let keep: Int

    /// A cache of the last `keep` encodings (2: a round's FitIns and EvaluateIns).
    public init(keep: Int = 2) { self.keep = max(1, keep) }

    /// Encodings built so far, and the times a cached one was handed out again.
    public var stats: (built: Int, reused: Int) { (built.load(ordering: .relaxed), reused.load(ordering: .relaxed)) }

    /// The encoding of `instruction`, calling `encode` only the first time.
    public func encoded<E: Error>(_ instruction: Instruction, variant: Int = 0,
                                  _ encode: () throws(E) -> Encoded) throws(E) -> Encoded {
        // Encoding under the lock: concurrent callers for the same round wait for the one encoding
        // instead of each making a copy (the round's peak stays one encoding, not one per client).
        try entries.withLock { (entries: inout [Entry]) throws(E) -> Encoded in
            if let hit = entries.first(where: { $0.variant == variant && Self.same($0.instruction, instruction) }) {
                reused.add(1, ordering: .relaxed)
                return hit.encoded
            }
            let encoded = try encode()
            built.add(1, ordering: .relaxed)
            entries.append(Entry(instruction: instruction, variant: variant, encoded: encoded))
            if entries.count > keep { entries.removeFirst(entries.count - keep) }
            return encoded
        }
    }

    private static func same(_ a: Instruction, _ b: Instruction) -> Bool {
        switch (a, b) {
        case (.fit(let x), .fit(let y)):
            return x.round == y.round && x.config == y.config && sameParameters(x.parameters, y.parameters)
        case (.evaluate(let x), .evaluate(let y)):
            return x.round == y.round && x.config == y.config && sameParameters(x.parameters, y.parameters)
        default:
            return false
        }
    }

    private static func sameParameters(_ a: Parameters, _ b: Parameters) -> Bool {
        guard a.values.count == b.values.count, a.layout == b.layout else { return false }
        let pa = a.values.withUnsafeBufferPointer { $0.baseAddress }
        let pb = b.values.withUnsafeBufferPointer { $0.baseAddress }
        return pa != nil && pa == pb
    }
}
