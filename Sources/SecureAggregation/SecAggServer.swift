// The server side of SecAgg+ as a state machine with no I/O. The driver feeds it each client message
// as it arrives and closes each phase (its deadline) by asking for the next phase's messages; clients
// not heard from by then count as dropped. Protocol and deviations: see SecAggClient.swift.
//
// Sets, as in Bonawitz et al. 2017: U1 sent keys, U2 ⊆ U1 sent shares, U3 ⊆ U2 sent masked inputs,
// U4 ⊆ U3 answered the unmask request. N(u) is u's neighbourhood on the graph over U1, and
// E(u) = N(u) ∩ U2 the neighbours u exchanged shares and pairwise masks with.
//
// Unmasking cost: one PRG stream per client in U3 (self masks) and one per (dropped client,
// neighbour in U3) pair (pairwise masks), so O((|U3| + k·|U2 \ U3|)·model) ≤ O(n·k·model).
import Crypto

/// The outcome of a round: the weighted average and what happened to the clients.
public struct SecAggResult: Sendable, Equatable {
    /// Σ wᵢ·clip(xᵢ) / Σ wᵢ over the clients whose masked input was summed, dequantised.
    public var average: [Float]
    /// Σ wᵢ (each wᵢ = min(examples, max_weight)).
    public var weightSum: UInt64
    /// Clients sampled (n).
    public var sampled: Int
    /// Clients whose masked input is in the sum (|U3|).
    public var aggregated: Int
    /// Clients that dropped at any step (n − |U3|).
    public var dropped: Int
    /// Dropped clients whose pairwise masks were removed by reconstructing their mask key (|U2 \ U3|).
    public var recovered: Int
    /// Largest error per coordinate from quantisation (`SecAggParameters.quantizationErrorBound`).
    public var quantizationErrorBound: Double
}

public struct SecAggServer: Sendable {
    public enum Phase: String, Sendable {
        case collectingKeys = "collecting public keys"
        case collectingShares = "collecting encrypted shares"
        case collectingMaskedInputs = "collecting masked inputs"
        case collectingUnmaskResponses = "collecting unmask responses"
        case finished = "finished"
        case failed = "failed"
    }

    public let round: UInt64
    public let parameters: SecAggParameters
    public let numClients: Int
    public let vectorLength: Int
    public private(set) var phase = Phase.collectingKeys
    /// Why the round failed, once it has.
    public private(set) var failure: SecAggError?

    var keys: [SecAggPublicKeys?]
    var neighbours: [[UInt32]]
    var inbox: [[SecAggEncryptedShare]]
    var sentShares: [Bool]
    var sentMaskedInput: [Bool]
    var maskedSum: [UInt32] = []
    var requests: [SecAggUnmaskRequest?]
    var responded: [Bool]
    var seedShares: [[(x: UInt64, values: [UInt64])]]
    var keyShares: [[(x: UInt64, values: [UInt64])]]

    /// A round of `numClients` clients whose updates have `vectorLength` values.
    public init(round: UInt64, config: SecAggConfig, numClients: Int, vectorLength: Int) throws(SecAggError) {
        parameters = try config.resolve(numClients: numClients)
        guard (1...SecAggLimits.maxVectorLength).contains(vectorLength) else {
            throw .invalidParameter(name: "vector length", value: "\(vectorLength)",
                                    reason: "must be in 1...\(SecAggLimits.maxVectorLength)")
        }
        self.round = round
        self.numClients = numClients
        self.vectorLength = vectorLength
        keys = Array(repeating: nil, count: numClients)
        neighbours = Array(repeating: [], count: numClients)
        inbox = Array(repeating: [], count: numClients)
        sentShares = Array(repeating: false, count: numClients)
        sentMaskedInput = Array(repeating: false, count: numClients)
        requests = Array(repeating: nil, count: numClients)
        responded = Array(repeating: false, count: numClients)
        seedShares = Array(repeating: [], count: numClients)
        keyShares = Array(repeating: [], count: numClients)
    }

    /// The message that starts the round for client `index`.
    public func setup(for index: UInt32) -> SecAggSetup {
        SecAggSetup(round: round, clientIndex: index, numClients: UInt32(numClients),
                    vectorLength: UInt64(vectorLength), parameters: parameters)
    }

    func expect(_ p: Phase, _ message: String) throws(SecAggError) {
        if phase == .failed, let failure { throw .roundAborted(reason: failure.description) }
        guard phase == p else { throw .unexpectedMessage(message: message, state: "the server is \(phase.rawValue)") }
    }

    func checkSender(round r: UInt64, sender: UInt32, _ what: String) throws(SecAggError) -> Int {
        guard r == round else { throw .wrongRound(expected: round, got: r) }
        guard sender < numClients else { throw .unknownClient(field: "\(what).sender", index: sender) }
        return Int(sender)
    }

    mutating func fail(_ error: SecAggError) -> SecAggError {
        phase = .failed
        failure = error
        maskedSum = []
        seedShares = []
        keyShares = []
        return error
    }

    /// Round 0: a client's public keys.
    public mutating func receive(_ m: SecAggPublicKeys) throws(SecAggError) {
        try expect(.collectingKeys, "public keys")
        let u = try checkSender(round: m.round, sender: m.sender, "public keys")
        guard keys[u] == nil else { throw .duplicate(field: "public keys", index: m.sender) }
        guard m.encryptionKey.count == 32, m.maskKey.count == 32 else {
            throw .malformed(field: "keys of client \(u)", reason: "X25519 public keys are 32 bytes each")
        }
        keys[u] = m
    }

    /// Closes round 0: draws the graph over the clients that sent keys (U1) and returns each one's
    /// neighbours' keys. The graph is Bell et al.'s: U1 in a random order on a ring, each client joined
    /// to the k/2 on either side (a Harary graph on a random permutation), or the complete graph when
    /// k ≥ |U1| − 1. `rng` must be unpredictable to clients outside tests.
    public mutating func neighbourKeys(using rng: inout some RandomNumberGenerator) throws(SecAggError) -> [SecAggNeighbourKeys] {
        try expect(.collectingKeys, "closing key collection")
        var u1 = (0..<numClients).filter { keys[$0] != nil }.map { UInt32($0) }
        let t = parameters.reconstructionThreshold
        guard u1.count > t else {
            throw fail(.tooFewClients(phase: "key advertisement", remaining: u1.count, needed: t + 1))
        }
        u1.shuffle(using: &rng)
        let size = u1.count
        let degree = min(parameters.numShares, size - 1)
        for (position, u) in u1.enumerated() {
            if degree == size - 1 {
                neighbours[Int(u)] = u1.filter { $0 != u }.sorted()
            } else {
                let half = degree / 2
                neighbours[Int(u)] = (1...half).flatMap { d in [u1[(position + d) % size], u1[(position - d + size) % size]] }.sorted()
            }
        }
        phase = .collectingShares
        return u1.sorted().map { u in
            SecAggNeighbourKeys(round: round, receiver: u, neighbours: neighbours[Int(u)].compactMap { keys[Int($0)] })
        }
    }

    /// Round 1: a client's encrypted shares, exactly one for each of its neighbours.
    public mutating func receive(_ m: SecAggShareKeys) throws(SecAggError) {
        try expect(.collectingShares, "encrypted shares")
        let u = try checkSender(round: m.round, sender: m.sender, "encrypted shares")
        guard keys[u] != nil else { throw .unknownClient(field: "encrypted shares (sent no keys)", index: m.sender) }
        guard !sentShares[u] else { throw .duplicate(field: "encrypted shares", index: m.sender) }
        let expected = neighbours[u]
        guard m.shares.count == expected.count else {
            throw .countOutOfRange(field: "encrypted shares", count: m.shares.count, allowed: expected.count...expected.count)
        }
        var seen = Set<UInt32>()
        for s in m.shares {
            guard s.sender == m.sender else { throw .wrongParty(field: "share.sender", expected: m.sender, got: s.sender) }
            guard expected.contains(s.receiver) else { throw .unknownClient(field: "share.receiver", index: s.receiver) }
            guard seen.insert(s.receiver).inserted else { throw .duplicate(field: "share.receiver", index: s.receiver) }
            guard s.ciphertext.count == SecAggEncryptedShare.byteCount else {
                throw .malformed(field: "share for client \(s.receiver)",
                                 reason: "\(s.ciphertext.count) bytes, expected \(SecAggEncryptedShare.byteCount)")
            }
        }
        for s in m.shares { inbox[Int(s.receiver)].append(s) }
        sentShares[u] = true
    }

    /// E(u): u's neighbours that sent shares (u's share holders and pairwise-mask partners).
    func exchanged(_ u: Int) -> [UInt32] { neighbours[u].filter { sentShares[Int($0)] } }

    /// Closes round 1: every client in U2 gets the shares its neighbours in U2 addressed to it. Fails
    /// (and reveals nothing) if some client in U2 has fewer than t neighbours in U2 holding its shares.
    public mutating func forwardShares() throws(SecAggError) -> [SecAggForwardedShares] {
        try expect(.collectingShares, "closing share collection")
        let u2 = (0..<numClients).filter { sentShares[$0] }
        let t = parameters.reconstructionThreshold
        guard u2.count > t else { throw fail(.tooFewClients(phase: "share distribution", remaining: u2.count, needed: t + 1)) }
        for u in u2 where exchanged(u).count < t {
            throw fail(.tooFewHolders(client: UInt32(u), phase: "share distribution", holders: exchanged(u).count, threshold: t))
        }
        maskedSum = [UInt32](repeating: 0, count: vectorLength + 1)
        phase = .collectingMaskedInputs
        return u2.map { u in
            SecAggForwardedShares(round: round, receiver: UInt32(u), shares: inbox[u].filter { sentShares[Int($0.sender)] })
        }
    }

    /// Round 2: a masked input, added into the running sum at once (the server keeps one vector).
    public mutating func receive(_ m: SecAggMaskedInput) throws(SecAggError) {
        try expect(.collectingMaskedInputs, "masked input")
        let u = try checkSender(round: m.round, sender: m.sender, "masked input")
        guard sentShares[u] else { throw .unknownClient(field: "masked input (sent no shares)", index: m.sender) }
        guard !sentMaskedInput[u] else { throw .duplicate(field: "masked input", index: m.sender) }
        guard m.vector.count == vectorLength + 1 else {
            throw .countOutOfRange(field: "masked input", count: m.vector.count, allowed: (vectorLength + 1)...(vectorLength + 1))
        }
        if parameters.modulusRange < 1 << 32, let bad = m.vector.first(where: { UInt64($0) >= parameters.modulusRange }) {
            throw .malformed(field: "masked input of client \(u)", reason: "value \(bad) is not below modulus_range")
        }
        maskedSum.withUnsafeMutableBufferPointer { sum in
            m.vector.withUnsafeBufferPointer { v in
                for i in 0..<sum.count { sum[i] &+= v[i] }
            }
        }
        sentMaskedInput[u] = true
    }

    /// Closes round 2: asks each client in U3 for the seed shares of its partners in U3 and the key
    /// shares of its partners that dropped. Fails, asking nobody for anything, if some client in U2 has
    /// fewer than t partners left in U3 (its secret could not be reconstructed).
    public mutating func unmaskRequests() throws(SecAggError) -> [SecAggUnmaskRequest] {
        try expect(.collectingMaskedInputs, "closing masked-input collection")
        let u2 = (0..<numClients).filter { sentShares[$0] }
        let t = parameters.reconstructionThreshold
        for j in u2 {
            let holders = exchanged(j).filter { sentMaskedInput[Int($0)] }.count
            if holders < t { throw fail(.tooFewHolders(client: UInt32(j), phase: "masked-input collection", holders: holders, threshold: t)) }
        }
        phase = .collectingUnmaskResponses
        return u2.filter { sentMaskedInput[$0] }.map { u in
            let e = exchanged(u)
            let r = SecAggUnmaskRequest(round: round, receiver: UInt32(u), seedSharesOf: e.filter { sentMaskedInput[Int($0)] },
                                        keySharesOf: e.filter { !sentMaskedInput[Int($0)] })
            requests[u] = r
            return r
        }
    }

    /// Round 3: a client's shares, exactly those it was asked for.
    public mutating func receive(_ m: SecAggUnmaskResponse) throws(SecAggError) {
        try expect(.collectingUnmaskResponses, "unmask response")
        let u = try checkSender(round: m.round, sender: m.sender, "unmask response")
        guard let request = requests[u] else { throw .unknownClient(field: "unmask response (was not asked)", index: m.sender) }
        guard !responded[u] else { throw .duplicate(field: "unmask response", index: m.sender) }
        for (got, asked, kind) in [(m.seedShares, request.seedSharesOf, "seed shares"), (m.keyShares, request.keySharesOf, "key shares")] {
            guard got.count == asked.count else {
                throw .countOutOfRange(field: "unmask response \(kind)", count: got.count, allowed: asked.count...asked.count)
            }
            guard got.map(\.owner).sorted() == asked.sorted() else {
                throw .malformed(field: "unmask response \(kind)", reason: "owners differ from those asked for")
            }
            for s in got where s.values.count != Shamir.elementsPerShare || s.values.contains(where: { $0 >= Field61.p }) {
                throw .malformed(field: "share of client \(s.owner)", reason: "\(Shamir.elementsPerShare) elements below 2^61 − 1 expected")
            }
        }
        let x = UInt64(u) + 1
        for s in m.seedShares { seedShares[Int(s.owner)].append((x, s.values)) }
        for s in m.keyShares { keyShares[Int(s.owner)].append((x, s.values)) }
        responded[u] = true
    }

    /// Closes round 3: checks that every secret needed has t shares, and only then reconstructs them,
    /// removes the masks and returns the weighted average. On failure nothing is unmasked.
    public mutating func finish() throws(SecAggError) -> SecAggResult {
        try expect(.collectingUnmaskResponses, "closing unmask-response collection")
        let t = parameters.reconstructionThreshold
        let u2 = (0..<numClients).filter { sentShares[$0] }
        for j in u2 {
            let have = sentMaskedInput[j] ? seedShares[j].count : keyShares[j].count
            if have < t { throw fail(.tooFewHolders(client: UInt32(j), phase: "unmasking", holders: have, threshold: t)) }
        }
        var sum = maskedSum
        var recovered = 0
        for j in u2 {
            let owner = UInt32(j)
            let all = sentMaskedInput[j] ? seedShares[j] : keyShares[j]
            let shares = Array(all.prefix(t))
            // A share beyond the t used must lie on the same polynomial: a holder that sent a wrong
            // share is caught here when one more share is available (the mask key is also checked
            // against its public key below; a seed has nothing else to check against).
            let consistent = all.count == t
                || Shamir.isConsistent(xs: shares.map(\.x), ys: shares.map(\.values), x: all[t].x, y: all[t].values)
            guard consistent, let secret = Shamir.reconstruct(xs: shares.map(\.x), ys: shares.map(\.values)) else {
                throw fail(.reconstructionFailed(client: owner, secret: sentMaskedInput[j] ? "self-mask seed" : "mask key"))
            }
            if sentMaskedInput[j] {
                do {
                    try MaskStream.apply(key: SecAggKDF.selfMaskKey(seed: secret, round: round, owner: owner), to: &sum, subtract: true)
                } catch { throw fail(error) }
                continue
            }
            // j dropped after sharing: rebuild its mask key, check it against the key it advertised, and
            // remove the pairwise mask each partner in U3 added for j.
            guard let privateKey = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: secret),
                  let advertised = keys[j], Array(privateKey.publicKey.rawRepresentation) == advertised.maskKey else {
                throw fail(.reconstructionFailed(client: owner, secret: "mask key"))
            }
            for v in exchanged(j) where sentMaskedInput[Int(v)] {
                guard let partner = keys[Int(v)] else { continue }
                do {
                    let key = try SecAggKDF.agreedKey(privateKey, partner.maskKey, purpose: "pairwise-mask", round: round, owner, v)
                    try MaskStream.apply(key: key, to: &sum, subtract: v < owner)
                } catch { throw fail(error) }
            }
            recovered += 1
        }
        if parameters.modulusRange < 1 << 32 {
            let m = UInt32(parameters.modulusRange - 1)
            for i in sum.indices { sum[i] &= m }
        }
        let weightSum = UInt64(sum[vectorLength])
        guard weightSum > 0 else {
            throw fail(.malformed(field: "weight sum", reason: "0: every aggregated client reported 0 examples"))
        }
        let quantizer = SecAggQuantizer(parameters: parameters)
        let average = sum[..<vectorLength].map { quantizer.dequantize(sum: $0, weightSum: weightSum) }
        let aggregated = sentMaskedInput.filter { $0 }.count
        phase = .finished
        maskedSum = []
        return SecAggResult(average: average, weightSum: weightSum, sampled: numClients, aggregated: aggregated,
                            dropped: numClients - aggregated, recovered: recovered,
                            quantizationErrorBound: parameters.quantizationErrorBound)
    }
}
