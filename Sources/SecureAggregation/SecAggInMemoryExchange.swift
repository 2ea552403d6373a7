// One SecAgg+ round between a server and n clients in one process, messages passed as values.
// Used by the tests, the benchmark, and any in-process simulation; the wire carries the same messages.
import FlowerBase

/// The four phases a round's cost is reported in.
public enum SecAggPhase: String, CaseIterable, Sendable {
    case keyExchange = "key exchange"
    case sharing = "sharing"
    case masking = "masking"
    case unmasking = "unmasking"
}

/// Clients that stop answering before a given message (their later messages are never sent).
public struct SecAggDropouts: Sendable, Equatable {
    /// Never send their public keys.
    public var beforeKeys: Set<UInt32>
    /// Send keys, never their shares.
    public var beforeShares: Set<UInt32>
    /// Send shares, never their masked input.
    public var beforeMaskedInput: Set<UInt32>
    /// Send their masked input, never answer the unmask request.
    public var beforeUnmasking: Set<UInt32>

    public init(beforeKeys: Set<UInt32> = [], beforeShares: Set<UInt32> = [], beforeMaskedInput: Set<UInt32> = [],
                beforeUnmasking: Set<UInt32> = []) {
        self.beforeKeys = beforeKeys
        self.beforeShares = beforeShares
        self.beforeMaskedInput = beforeMaskedInput
        self.beforeUnmasking = beforeUnmasking
    }
}

/// Time and payload bytes of one phase (`SecAggPayloadBytes`), summed over the clients that took part.
public struct SecAggPhaseCost: Sendable, Equatable {
    public var clientSeconds: Double = 0
    public var serverSeconds: Double = 0
    public var clients = 0
    /// Client → server.
    public var uploadBytes = 0
    /// Server → client.
    public var downloadBytes = 0
}

public struct SecAggRoundReport: Sendable {
    public var result: SecAggResult
    public var phases: [SecAggPhase: SecAggPhaseCost]
}

public enum SecAggInMemoryExchange {
    /// Runs a round of `numClients` clients; `update(i)` gives client i's update and example count
    /// when it masks (so only one update is alive at a time). `observe` sees every masked input the
    /// server receives. Throws the first error of any state machine.
    public static func run(round: UInt64 = 1, config: SecAggConfig, numClients: Int, vectorLength: Int,
                           dropouts: SecAggDropouts = SecAggDropouts(),
                           rng: inout some RandomNumberGenerator,
                           observe: (SecAggMaskedInput) -> Void = { _ in },
                           update: (UInt32) -> (values: [Float], numExamples: Int)) throws(SecAggError) -> SecAggRoundReport {
        let clock = ContinuousClock()
        var costs: [SecAggPhase: SecAggPhaseCost] = [:]
        func timed<T>(_ phase: SecAggPhase, server: Bool, _ body: () throws(SecAggError) -> T) throws(SecAggError) -> T {
            let start = clock.now
            let value = try body()
            let d = clock.now - start
            let s = d.seconds
            if server { costs[phase, default: .init()].serverSeconds += s } else { costs[phase, default: .init()].clientSeconds += s }
            return value
        }

        var server = try SecAggServer(round: round, config: config, numClients: numClients, vectorLength: vectorLength)
        var clients: [UInt32: SecAggClient] = [:]
        // Key exchange: setup, public keys, neighbour keys.
        for i in (0..<UInt32(numClients)) where !dropouts.beforeKeys.contains(i) {
            let setup = server.setup(for: i)
            let keys = try timed(.keyExchange, server: false) { () throws(SecAggError) in
                let c = try SecAggClient(setup: setup)
                clients[i] = c
                return c.publicKeys
            }
            costs[.keyExchange, default: .init()].uploadBytes += SecAggPayloadBytes.of(keys)
            costs[.keyExchange, default: .init()].clients += 1
            try timed(.keyExchange, server: true) { () throws(SecAggError) in try server.receive(keys) }
        }
        let neighbourKeys = try timed(.keyExchange, server: true) { () throws(SecAggError) in try server.neighbourKeys(using: &rng) }
        // Sharing: encrypted shares up, forwarded shares down.
        for message in neighbourKeys {
            costs[.keyExchange, default: .init()].downloadBytes += SecAggPayloadBytes.of(message)
            guard !dropouts.beforeShares.contains(message.receiver), var c = clients[message.receiver] else { continue }
            let shares = try timed(.sharing, server: false) { () throws(SecAggError) in try c.shareKeys(message) }
            clients[message.receiver] = c
            costs[.sharing, default: .init()].uploadBytes += SecAggPayloadBytes.of(shares)
            costs[.sharing, default: .init()].clients += 1
            try timed(.sharing, server: true) { () throws(SecAggError) in try server.receive(shares) }
        }
        let forwarded = try timed(.sharing, server: true) { () throws(SecAggError) in try server.forwardShares() }
        // Masking: each client decrypts its shares, masks its update, the server adds it in.
        for message in forwarded {
            costs[.sharing, default: .init()].downloadBytes += SecAggPayloadBytes.of(message)
            guard !dropouts.beforeMaskedInput.contains(message.receiver), var c = clients[message.receiver] else { continue }
            try timed(.sharing, server: false) { () throws(SecAggError) in try c.receiveShares(message) }
            let (values, examples) = update(message.receiver)
            let masked = try timed(.masking, server: false) { () throws(SecAggError) in
                try c.maskedInput(update: values, numExamples: examples)
            }
            clients[message.receiver] = c
            costs[.masking, default: .init()].uploadBytes += SecAggPayloadBytes.of(masked)
            costs[.masking, default: .init()].clients += 1
            observe(masked)
            try timed(.masking, server: true) { () throws(SecAggError) in try server.receive(masked) }
        }
        // Unmasking: requests, responses, reconstruction.
        let requests = try timed(.unmasking, server: true) { () throws(SecAggError) in try server.unmaskRequests() }
        for request in requests {
            costs[.unmasking, default: .init()].downloadBytes += SecAggPayloadBytes.of(request)
            guard !dropouts.beforeUnmasking.contains(request.receiver), var c = clients[request.receiver] else { continue }
            let response = try timed(.unmasking, server: false) { () throws(SecAggError) in try c.unmask(request) }
            clients[request.receiver] = c
            costs[.unmasking, default: .init()].uploadBytes += SecAggPayloadBytes.of(response)
            costs[.unmasking, default: .init()].clients += 1
            try timed(.unmasking, server: true) { () throws(SecAggError) in try server.receive(response) }
        }
        let result = try timed(.unmasking, server: true) { () throws(SecAggError) in try server.finish() }
        return SecAggRoundReport(result: result, phases: costs)
    }
}
