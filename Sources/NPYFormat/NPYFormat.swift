// numpy's .npy format, the part both of its users share: the header. An .npy file (or one tensor
// Flower sends) is "\x93NUMPY", major, minor, header length (u16 LE in 1.0, u32 LE in 2.0/3.0),
// an ASCII dict {'descr': '<f4', 'fortran_order': False, 'shape': (32, 1, 3, 3), } padded with
// spaces and '\n' so the data starts on a 64-byte boundary, then the elements.
// Spec: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
//
// Users: CIFARLoader's .npy/.npz files (NPY.swift) and FlowerCompat's tensors from Flower peers
// (NPYTensor.swift). Each decides which element types ('descr') it accepts, whether Fortran
// order is allowed, and how many data bytes must follow; this module only writes the header and
// parses it with bounds that make hostile input cheap: a bounded header length, a bounded number
// of dimensions, and an overflow-checked element count before any caller allocates.

import Foundation

/// Writes and parses the header of numpy's `.npy` format.
public enum NPYFormat {
    /// The six bytes every .npy starts with: "\x93NUMPY".
    public static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    /// A parsed header.
    public struct Header: Sendable, Equatable {
        /// numpy's type string as written ('<f4', '|u1', ...), quotes removed.
        public var descr: String
        /// The dict's `fortran_order`; nil when the dict has none.
        public var fortranOrder: Bool?
        /// Dimension sizes; [] for a scalar.
        public var shape: [Int]
        /// The shape as written, for messages.
        public var shapeText: String
        /// Elements: the product of `shape` (checked not to overflow).
        public var count: Int
        /// Where the data starts, from the first byte of the magic.
        public var dataOffset: Int
    }

    /// Why a header was refused; `detail` says what was wrong.
    public enum ParseError: Error, Equatable, Sendable {
        /// The bytes end before the header does.
        case truncated(String)
        /// The first six bytes are not "\x93NUMPY" (the bytes found, at most six).
        case wrongMagic(found: [UInt8])
        /// The header is there but cannot be read.
        case malformed(String)

        /// What was wrong, in words.
        public var detail: String {
            switch self {
            case .truncated(let d), .malformed(let d): return d
            case .wrongMagic(let found):
                return "not .npy bytes: the file starts with \(found.map { String($0, radix: 16) }.joined(separator: " ")), where .npy starts with 93 4e 55 4d 50 59 (\\x93NUMPY)"
            }
        }
    }

    /// The header bytes (magic through the padding '\n') numpy writes for an array of `descr`
    /// and `shape` in C order: version 1.0, or 2.0 when the dict needs more than 65,535 bytes;
    /// data 64-byte aligned.
    public static func header(descr: String, shape: [Int]) -> [UInt8] {
        let dims = shape.map(String.init)
        let shapeText = "(" + dims.joined(separator: ", ") + (dims.count == 1 ? ",)" : ")")
        let dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        var version: UInt8 = 1, prefix = 10
        if dict.utf8.count + 1 + 10 > 65535 { version = 2; prefix = 12 }
        let total = (prefix + dict.utf8.count + 1 + 63) / 64 * 64
        let headerLength = total - prefix
        var out: [UInt8] = magic + [version, 0]
        out.reserveCapacity(total)
        if version == 1 {
            out += [UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)]
        } else {
            out += (0 ..< 4).map { UInt8((headerLength >> (8 * $0)) & 0xFF) }
        }
        out += Array(dict.utf8)
        out += [UInt8](repeating: 0x20, count: total - out.count - 1)
        out.append(0x0A)
        return out
    }

    /// Parses the header at the start of `bytes`. Refuses a header longer than `maxHeaderBytes`
    /// (numpy writes ~128 bytes; its own reader stops at 10,000 unless told otherwise), more than
    /// `maxDimensions` dimensions, and a shape whose element count overflows. Says nothing about
    /// the data: the caller checks that enough bytes follow for its element type.
    public static func parseHeader(_ bytes: UnsafeRawBufferPointer, maxHeaderBytes: Int = 65_536,
                                   maxDimensions: Int = 64) throws(ParseError) -> Header {
        guard bytes.count >= 10 else {
            throw .truncated("\(bytes.count) bytes, shorter than an .npy header (truncated?)")
        }
        guard bytes.prefix(6).elementsEqual(magic) else { throw .wrongMagic(found: Array(bytes.prefix(6))) }
        let major = bytes[6]
        var headerLength = 0, prefix = 10
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        case 2, 3:
            guard bytes.count >= 12 else { throw .truncated("header cut short (truncated .npy)") }
            prefix = 12
            headerLength = (0 ..< 4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        default:
            throw .malformed(".npy format version \(major) is not supported (1, 2 and 3 are)")
        }
        guard headerLength <= maxHeaderBytes else {
            throw .malformed("header of \(headerLength) bytes exceeds \(maxHeaderBytes)")
        }
        guard bytes.count - prefix >= headerLength else {
            throw .truncated("header of \(headerLength) bytes but only \(bytes.count - prefix) present: header cut short (truncated .npy)")
        }
        guard let dict = String(validating: bytes[prefix ..< prefix + headerLength], as: UTF8.self) else {
            throw .malformed("header is not text")
        }
        guard let descr = field(dict, "descr")?.trimmingCharacters(in: ["'", "\""]) else {
            throw .malformed("header has no 'descr': \(dict.prefix(200))")
        }
        var fortranOrder: Bool?
        switch field(dict, "fortran_order") {
        case nil: fortranOrder = nil
        case "True": fortranOrder = true
        case "False": fortranOrder = false
        case let other?: throw .malformed("'fortran_order' is '\(other.prefix(40))', not True or False")
        }
        guard let shapeText = field(dict, "shape"), shapeText.hasPrefix("("), shapeText.hasSuffix(")") else {
            throw .malformed("header has no readable 'shape': \(dict.prefix(200))")
        }
        let parts = shapeText.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: [" "]) }
        // "(3,)" splits into ["3", ""]; "()" into [""].
        let dims = parts.last == "" ? Array(parts.dropLast()) : parts
        guard dims.count <= maxDimensions else {
            throw .malformed("\(dims.count) dimensions exceed the limit of \(maxDimensions)")
        }
        var shape: [Int] = []
        var count = 1
        for d in dims {
            guard d.count <= 19, let v = Int(d), v >= 0 else {
                throw .malformed("bad dimension '\(d.prefix(40))' in shape \(shapeText.prefix(200))")
            }
            let (p, overflow) = count.multipliedReportingOverflow(by: v)
            guard !overflow else { throw .malformed("shape \(shapeText.prefix(200)) is impossibly large") }
            shape.append(v); count = p
        }
        return Header(descr: descr, fortranOrder: fortranOrder, shape: shape, shapeText: String(shapeText.prefix(200)),
                      count: count, dataOffset: prefix + headerLength)
    }

    /// The text of `'key': value` in a numpy header dict (a tuple value kept whole).
    private static func field(_ dict: String, _ key: String) -> String? {
        guard let keyRange = dict.range(of: "'\(key)':") else { return nil }
        let rest = dict[keyRange.upperBound...].drop(while: { $0 == " " })
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[rest.startIndex ... close])
        }
        let end = rest.firstIndex(where: { $0 == "," || $0 == "}" }) ?? rest.endIndex
        return String(rest[rest.startIndex ..< end]).trimmingCharacters(in: [" "])
    }
}
