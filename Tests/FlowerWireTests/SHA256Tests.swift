// SHA-256 against FIPS 180-4 examples and HMAC-SHA256 against RFC 4231.
@testable import FlowerWire
import XCTest

final class SHA256Tests: XCTestCase {
    func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
    func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16) ?? 0) }
        return out
    }

    func testFIPS180Vectors() {
        XCTAssertEqual(hex(SHA256.hash(Array("abc".utf8))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(hex(SHA256.hash([UInt8]())), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(hex(SHA256.hash(Array("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8))),
                       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
    }

    func testStreamingEqualsOneShotAcrossBlockBoundaries() {
        let message = (0 ..< 1000).map { UInt8(truncatingIfNeeded: $0 * 31) }
        for split in [0, 1, 55, 56, 63, 64, 65, 999] {
            var d = SHA256()
            d.update(message[..<split])
            d.update(message[split...])
            XCTAssertEqual(d.finalize(), SHA256.hash(message), "split at \(split)")
        }
    }

    func testRFC4231Vectors() {
        let cases: [(key: [UInt8], data: [UInt8], mac: String)] = [
            ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8),
             "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
             "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ([UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50),
             "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (bytes("0102030405060708090a0b0c0d0e0f10111213141516171819"), [UInt8](repeating: 0xcd, count: 50),
             "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            ([UInt8](repeating: 0xaa, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
             "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            ([UInt8](repeating: 0xaa, count: 131),
             Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8),
             "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ]
        for (i, c) in cases.enumerated() {
            XCTAssertEqual(hex(HMACSHA256.mac(key: c.key, message: c.data)), c.mac, "RFC 4231 case \(i + 1)")
        }
    }

    func testProofCoversNonceAndClientID() {
        let nonce = [UInt8](repeating: 7, count: 32)
        let p = HMACSHA256.proof(token: "secret", nonce: nonce, clientID: "c1")
        XCTAssertEqual(p, HMACSHA256.mac(key: Array("secret".utf8), message: nonce + Array("c1".utf8)))
        XCTAssertNotEqual(p, HMACSHA256.proof(token: "secret", nonce: nonce, clientID: "c2"))
        XCTAssertNotEqual(p, HMACSHA256.proof(token: "other", nonce: nonce, clientID: "c1"))
        XCTAssertTrue(HMACSHA256.constantTimeEqual(p, p))
        XCTAssertFalse(HMACSHA256.constantTimeEqual(p, Array(p.dropLast())))
        XCTAssertFalse(HMACSHA256.constantTimeEqual(p, p.enumerated().map { $0.offset == 31 ? $0.element ^ 1 : $0.element }))
    }
}
