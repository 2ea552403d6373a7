// The handshake proof from swift-crypto: HMAC-SHA256(token, nonce || utf8(clientID)), checked
// against RFC 4231's test cases split at a nonce/clientID boundary, and the constant-time check.
import FlowerTLS
import XCTest

final class CryptoHandshakeMACTests: XCTestCase {
    func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    func testProofIsHMACSHA256OfNonceThenClientID() {
        let mac = CryptoHandshakeMAC()
        let proof = mac.proof(token: "Jefe", nonce: Array("what do ya want ".utf8), clientID: "for nothing?")
        XCTAssertEqual(hex(proof), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        XCTAssertTrue(mac.verify(proof, token: "Jefe", nonce: Array("what do ya want ".utf8), clientID: "for nothing?"))
    }

    /// A token longer than the 64-byte block (hashed first), against Python's hmac; the proof
    /// covers nonce || clientID as one message, wherever the split falls.
    func testLongTokenAndSplitIndependence() {
        let ascii = String(repeating: "k", count: 131)
        let mac = CryptoHandshakeMAC()
        let whole = Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)
        let a = mac.proof(token: ascii, nonce: Array(whole[..<10]), clientID: String(decoding: whole[10...], as: UTF8.self))
        let b = mac.proof(token: ascii, nonce: Array(whole[..<30]), clientID: String(decoding: whole[30...], as: UTF8.self))
        XCTAssertEqual(a, b)
        // Python: hmac.new(b"k" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First", "sha256")
        XCTAssertEqual(hex(a), "70e4b005732fa7ff79392aa24fb240159b925dbc9f1398420c0f45e6763dcf14")
    }

    func testVerifyRejectsAnyChange() {
        let mac = CryptoHandshakeMAC()
        let nonce = [UInt8](0 ..< 32)
        let proof = mac.proof(token: "s3cret", nonce: nonce, clientID: "partition-0")
        var flipped = proof
        flipped[31] ^= 1
        XCTAssertFalse(mac.verify(flipped, token: "s3cret", nonce: nonce, clientID: "partition-0"))
        XCTAssertFalse(mac.verify(Array(proof.dropLast()), token: "s3cret", nonce: nonce, clientID: "partition-0"))
        XCTAssertFalse(mac.verify([], token: "s3cret", nonce: nonce, clientID: "partition-0"))
        XCTAssertFalse(mac.verify(proof, token: "s3cret!", nonce: nonce, clientID: "partition-0"))
        XCTAssertFalse(mac.verify(proof, token: "s3cret", nonce: nonce, clientID: "partition-1"))
        XCTAssertTrue(mac.verify(proof, token: "s3cret", nonce: nonce, clientID: "partition-0"))
    }
}
