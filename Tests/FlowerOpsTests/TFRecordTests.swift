import Foundation
import Testing
@testable import FlowerOps

/// CRC-32C against published check values, and TFRecord framing round trips and corruption.
struct TFRecordTests {
    @Test(arguments: [
        ("123456789", UInt32(0xE306_9283)),  // the CRC catalogue's check value for CRC-32C
        ("", UInt32(0)),
        ("a", UInt32(0xC1D0_4330)),
    ])
    func crc32cCheckValues(text: String, expected: UInt32) {
        #expect(CRC32C.checksum(Array(text.utf8)) == expected)
    }

    /// RFC 3720 (iSCSI) B.4 test vectors: 32 bytes of zeros, of 0xFF, and ascending 0...31.
    @Test func crc32cRFC3720Vectors() {
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0 ..< 32).map { UInt8($0) }) == 0x46DD_794E)
    }

    @Test func frameLayoutAndRoundTrip() throws {
        let data: [UInt8] = [1, 2, 3, 250]
        let framed = TFRecord.frame(data)
        #expect(framed.count == 8 + 4 + data.count + 4)
        #expect(Array(framed[0 ..< 8]) == [4, 0, 0, 0, 0, 0, 0, 0])  // little-endian length
        let lengthCRC = CRC32C.checksum(framed[0 ..< 8])
        let masked = ((lengthCRC >> 15) | (lengthCRC << 17)) &+ 0xA282_EAD8
        #expect(Array(framed[8 ..< 12]) == withUnsafeBytes(of: masked.littleEndian, Array.init))
        #expect(try TFRecord.records(framed + TFRecord.frame([])) == [data, []])
    }

    @Test func corruptionIsDetected() {
        var framed = TFRecord.frame([9, 9, 9])
        framed[13] ^= 1
        #expect(throws: TFRecord.ParseError.badDataCRC(offset: 0)) { try TFRecord.records(framed) }
        var length = TFRecord.frame([9])
        length[0] = 200
        #expect(throws: TFRecord.ParseError.badLengthCRC(offset: 0)) { try TFRecord.records(length) }
        #expect(throws: TFRecord.ParseError.truncated(offset: 0)) { try TFRecord.records(Array(TFRecord.frame([1]).prefix(10))) }
    }
}
