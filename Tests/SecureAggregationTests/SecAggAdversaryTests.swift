// A cheating server, replayed and cross-round messages, and hostile sizes: each one refused with a
// typed error and without trapping or allocating what the peer asked for.
import Testing
@testable import SecureAggregation

struct SecAggAdversaryTests {
    static let config = SecAggConfig(numShares: 4, reconstructionThreshold: 3, clippingRange: 1, maxWeight: 10)

    static func update(_ i: UInt32) -> ([Float], Int) { ((0..<8).map { Float($0) / 8 - Float(i) / 20 }, 5) }

    /// A round run up to the unmask requests.
    static func roundAtUnmasking(round: UInt64 = 1) throws -> RoundDriver {
        var d = try RoundDriver(round: round, config: config, numClients: 8, vectorLength: 8)
        try d.exchangeKeys()
        try d.shareKeys()
        try d.maskInputs(update: update)
        return d
    }

    @Test func clientRefusesARequestForBothSharesOfOnePeer() throws {
        var d = try Self.roundAtUnmasking()
        let honest = try #require(d.requests[0])
        let peer = try #require(honest.seedSharesOf.first)
        var cheat = honest
        cheat.keySharesOf.append(peer)
        #expect(throws: SecAggError.bothSharesRequested(peer: peer)) { _ = try d.clients[0]!.unmask(cheat) }
        // The refusal is final for this round: not even the honest request is answered afterwards.
        #expect(throws: SecAggError.self) { _ = try d.clients[0]!.unmask(honest) }
        // Cheating the other way round (claiming a peer that answered has dropped) is refused the same way.
        var cheat2 = try #require(d.requests[1])
        let peer2 = try #require(cheat2.seedSharesOf.first)
        cheat2.keySharesOf = [peer2]
        cheat2.seedSharesOf = [peer2]
        #expect(throws: SecAggError.bothSharesRequested(peer: peer2)) { _ = try d.clients[1]!.unmask(cheat2) }
    }

    @Test func clientRefusesSharesOfStrangersAndDuplicates() throws {
        var d = try Self.roundAtUnmasking()
        var r = try #require(d.requests[0])
        let stranger = try #require((1..<8).map { UInt32($0) }.first { !d.neighbours(of: 0).contains($0) })
        r.seedSharesOf[0] = stranger
        #expect(throws: SecAggError.unknownClient(field: "unmask request", index: stranger)) { _ = try d.clients[0]!.unmask(r) }
        var dup = try #require(d.requests[0])
        dup.seedSharesOf = [dup.seedSharesOf[0], dup.seedSharesOf[0]]
        #expect(throws: SecAggError.duplicate(field: "unmask request", index: dup.seedSharesOf[0])) { _ = try d.clients[0]!.unmask(dup) }
        // Refusals of malformed requests leave the client able to answer the real one.
        let response = try d.clients[0]!.unmask(d.requests[0]!)
        #expect(response.seedShares.count == d.requests[0]!.seedSharesOf.count)
    }

    /// A holder that reveals a wrong seed share is caught by the share beyond the threshold: the round
    /// fails naming the owner, and nothing is returned.
    @Test func aWrongShareFailsTheRoundInsteadOfCorruptingTheSum() throws {
        var d = try Self.roundAtUnmasking()
        for (i, r) in d.requests.sorted(by: { $0.key < $1.key }) {
            var response = try d.clients[i]!.unmask(r)
            if i == 0 { response.seedShares[0].values[2] = Field61.add(response.seedShares[0].values[2], 1) }
            try d.server.receive(response)
        }
        let owner = d.requests[0]!.seedSharesOf[0]
        #expect(throws: SecAggError.reconstructionFailed(client: owner, secret: "self-mask seed")) { _ = try d.server.finish() }
        #expect(d.server.phase == .failed)
    }

    @Test func replayedMessagesAreRefusedAndDoNotChangeTheSum() throws {
        var d = try RoundDriver(config: Self.config, numClients: 8, vectorLength: 8)
        try d.exchangeKeys()
        // The server takes each client's keys once.
        #expect(throws: SecAggError.unexpectedMessage(message: "public keys", state: "the server is collecting encrypted shares")) {
            try d.server.receive(d.clients[0]!.publicKeys)
        }
        try d.shareKeys()
        // A client takes its forwarded shares once.
        #expect(throws: SecAggError.self) {
            try d.clients[2]!.receiveShares(d.forwarded[2]!)
            try d.clients[2]!.receiveShares(d.forwarded[2]!)
        }
        // Within one message, the same sender's share twice.
        var twice = d.forwarded[3]!
        twice.shares[1] = twice.shares[0]
        #expect(throws: SecAggError.duplicate(field: "forwarded shares", index: twice.shares[0].sender)) {
            try d.clients[3]!.receiveShares(twice)
        }
        // The server adds each masked input once: a replay is refused and the result stays correct.
        try d.clients[0]!.receiveShares(d.forwarded[0]!)
        let input = try d.clients[0]!.maskedInput(update: Self.update(0).0, numExamples: 5)
        try d.server.receive(input)
        #expect(throws: SecAggError.duplicate(field: "masked input", index: 0)) { try d.server.receive(input) }
        d.clients[2] = try SecAggClient(setup: d.server.setup(for: 2))  // discard the replay test's client state
        var rest = d.forwarded
        rest[0] = nil
        rest[2] = nil
        d.forwarded = rest
        d.masked[0] = input
        try d.maskInputs(update: Self.update)
        // Client 2 never masked (its state was reset): it counts as dropped and its mask key is recovered.
        let result = try d.unmask()
        let survivors: [UInt32] = [0, 1, 3, 4, 5, 6, 7]
        let expected = plainFedAvg(survivors.map { Self.update($0).0 }, weights: survivors.map { _ in 5 }, clip: 1)
        #expect(zip(result.average, expected).allSatisfy { abs(Double($0) - $1) <= result.quantizationErrorBound + 1e-6 })
        #expect(result.recovered == 1)
    }

    @Test func sharesFromAnotherRoundAreRefused() throws {
        let one = try Self.roundAtUnmasking(round: 1)
        var two = try RoundDriver(round: 2, config: Self.config, numClients: 8, vectorLength: 8)
        try two.exchangeKeys()
        try two.shareKeys()
        // A message stamped with round 1 is refused by round 2's client.
        let stale = one.forwarded[0]!
        #expect(throws: SecAggError.wrongRound(expected: 2, got: 1)) { try two.clients[0]!.receiveShares(stale) }
        // Round 1's ciphertexts relabelled as round 2 fail authentication.
        var relabelled = two.forwarded[0]!
        let senders = Set(relabelled.shares.map(\.sender))
        relabelled.shares = stale.shares.filter { senders.contains($0.sender) }
        if relabelled.shares.count >= Self.config.reconstructionThreshold! {
            #expect(throws: SecAggError.self) { try two.clients[0]!.receiveShares(relabelled) }
        }
        // The associated data alone binds the round: same key, another round, refused.
        let key = SymmetricKeyFixture.key
        let sealed = try ShareCipher.seal(seedShare: [1, 2, 3, 4, 5], keyShare: [6, 7, 8, 9, 10], key: key, round: 1, sender: 3, receiver: 4)
        #expect(try ShareCipher.open(sealed, key: key, round: 1, sender: 3, receiver: 4).seed == [1, 2, 3, 4, 5])
        #expect(throws: SecAggError.shareAuthenticationFailed(sender: 3)) { _ = try ShareCipher.open(sealed, key: key, round: 2, sender: 3, receiver: 4) }
        #expect(throws: SecAggError.shareAuthenticationFailed(sender: 3)) { _ = try ShareCipher.open(sealed, key: key, round: 1, sender: 3, receiver: 5) }
        var flipped = sealed
        flipped[20] ^= 1
        #expect(throws: SecAggError.shareAuthenticationFailed(sender: 3)) { _ = try ShareCipher.open(flipped, key: key, round: 1, sender: 3, receiver: 4) }
        // The server refuses other rounds' messages too.
        var twoServer = try SecAggServer(round: 2, config: Self.config, numClients: 8, vectorLength: 8)
        #expect(throws: SecAggError.wrongRound(expected: 2, got: 1)) { try twoServer.receive(one.clients[0]!.publicKeys) }
    }
}

import Crypto
enum SymmetricKeyFixture {
    static let key = SymmetricKey(data: [UInt8](repeating: 7, count: 32))
}
