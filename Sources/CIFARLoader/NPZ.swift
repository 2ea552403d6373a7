// NPZ: numpy's .npz, a zip archive of .npy members named "<array>.npy". We write stored
// (uncompressed) members, which numpy.load reads directly; we read stored and deflated members
// (numpy.savez_compressed), with zip64 extra fields as numpy's savez writes them. The server
// saves the final model with it (one array per parameter) and `flwr privatize` a partition.
// Zip layout: APPNOTE.TXT 6.3 (local headers, central directory, end of central directory).
import FlowerZlib
import Foundation

/// Reading and writing numpy .npz archives.
public enum NPZ {
    /// Writes `arrays` to `path` as a stored .npz (atomically: a temporary file is renamed).
    /// Output is byte-identical for identical input (fixed timestamps).
    public static func write(_ arrays: [NPZArray], to path: String) throws {
        // Streams each member (header, then the array's own buffer) to a temporary file: no copy
        // of the data is made, so a 200 MB partition costs 200 MB, not 400.
        let file = try AtomicFile(path)
        var central: [UInt8] = []
        var offset = 0
        for array in arrays {
            let header = array.npyHeader()
            let size = header.count + array.data.count
            guard size < 0xFFFF_FFFF, offset < 0xFFFF_FFFF else {
                file.discard()
                throw LoaderError.writeFailed(path: path, reason: "array '\(array.name)' would put the archive past 4 GiB, beyond plain zip; split it")
            }
            var crc = header.withUnsafeBytes { Zlib.crc32($0) }
            crc = array.data.withUnsafeBytes { Zlib.crc32($0, continuing: crc) }
            let name = Array((array.name + ".npy").utf8)
            var local: [UInt8] = []
            local.append32(0x0403_4B50); local.append16(20); local.append16(0); local.append16(0)  // version, flags, stored
            local.append16(0); local.append16(0x21)                                                // 00:00, 1980-01-01
            local.append32(crc); local.append32(UInt32(size)); local.append32(UInt32(size))
            local.append16(UInt16(name.count)); local.append16(0)
            local += name
            local += header
            try file.write(local)
            try array.data.withUnsafeBytes { try file.write($0) }
            // Central directory entry.
            central.append32(0x0201_4B50); central.append16(0x031E); central.append16(20)  // made by unix 3.0
            central.append16(0); central.append16(0); central.append16(0); central.append16(0x21)
            central.append32(crc); central.append32(UInt32(size)); central.append32(UInt32(size))
            central.append16(UInt16(name.count)); central.append16(0); central.append16(0)
            central.append16(0); central.append16(0); central.append32(0o100644 << 16)
            central.append32(UInt32(offset))
            central += name
            offset += local.count + array.data.count
        }
        guard offset < 0xFFFF_FFFF, arrays.count < 0xFFFF else {
            file.discard()
            throw LoaderError.writeFailed(path: path, reason: "archive past 4 GiB or 65,535 arrays, beyond plain zip")
        }
        var tail = central
        tail.append32(0x0605_4B50); tail.append16(0); tail.append16(0)
        tail.append16(UInt16(arrays.count)); tail.append16(UInt16(arrays.count))
        tail.append32(UInt32(central.count)); tail.append32(UInt32(offset)); tail.append16(0)
        try file.write(tail)
        try file.commit()
    }

    /// Reads every array of the .npz at `path`, in archive order.
    public static func read(_ path: String) throws -> [NPZArray] {
        guard fileExists(path) else {
            throw LoaderError.missingFile(path: path, hint: "write one with `flwr privatize --out DIR` or numpy.savez")
        }
        return try parse(try readFileBytes(path), path: path)
    }

    /// Parses an .npz archive held in memory (`path` names it in errors).
    static func parse(_ b: [UInt8], path: String) throws -> [NPZArray] {
        guard b.count >= 4, b.le32(0) == 0x0403_4B50 || b.le32(0) == 0x0605_4B50 else {
            throw LoaderError.wrongMagic(path: path, expected: "50 4b 03 04 (zip)", found: hexPrefix(b, 4))
        }
        // The end-of-central-directory record: the last 22 bytes plus an optional comment.
        var eocd = -1
        var i = b.count - 22
        while i >= max(0, b.count - 22 - 65535) {
            if b.le32(i) == 0x0605_4B50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw LoaderError.truncated(path: path, detail: "no zip end-of-central-directory record: the archive was cut short") }
        var entries = Int(b.le16(eocd + 10))
        var cdOffset = Int(b.le32(eocd + 16))
        if (entries == 0xFFFF || cdOffset == 0xFFFF_FFFF), eocd >= 20, b.le32(eocd - 20) == 0x0706_4B50 {
            let z64 = clampedInt(b.le64(eocd - 12))  // zip64 end-of-central-directory locator → record
            guard z64 <= b.count - 56, b.le32(z64) == 0x0606_4B50 else { throw LoaderError.malformed(path: path, detail: "bad zip64 end record") }
            entries = clampedInt(b.le64(z64 + 32)); cdOffset = clampedInt(b.le64(z64 + 48))
        }
        var arrays: [NPZArray] = []
        var p = cdOffset
        for _ in 0 ..< entries {
            guard p >= 0, p <= b.count - 46, b.le32(p) == 0x0201_4B50 else {
                throw LoaderError.malformed(path: path, detail: "zip central directory entry at byte \(p) is damaged")
            }
            let method = b.le16(p + 10), crc = b.le32(p + 16)
            var csize = Int(b.le32(p + 20)), usize = Int(b.le32(p + 24))
            let nameLen = Int(b.le16(p + 28)), extraLen = Int(b.le16(p + 30)), commentLen = Int(b.le16(p + 32))
            var local = Int(b.le32(p + 42))
            guard p + 46 + nameLen + extraLen <= b.count else { throw LoaderError.truncated(path: path, detail: "central directory cut short") }
            let name = String(decoding: b[p + 46 ..< p + 46 + nameLen], as: UTF8.self)
            // zip64 extended information: the 0xFFFFFFFF fields, in order usize, csize, offset.
            var e = p + 46 + nameLen
            while e + 4 <= p + 46 + nameLen + extraLen {
                let id = b.le16(e), len = Int(b.le16(e + 2))
                if id == 1 {
                    var q = e + 4
                    if usize == 0xFFFF_FFFF, q + 8 <= e + 4 + len { usize = clampedInt(b.le64(q)); q += 8 }
                    if csize == 0xFFFF_FFFF, q + 8 <= e + 4 + len { csize = clampedInt(b.le64(q)); q += 8 }
                    if local == 0xFFFF_FFFF, q + 8 <= e + 4 + len { local = clampedInt(b.le64(q)) }
                }
                e += 4 + len
            }
            p += 46 + nameLen + extraLen + commentLen
            guard local <= b.count - 30, b.le32(local) == 0x0403_4B50 else {
                throw LoaderError.malformed(path: path, detail: "local header of '\(name)' is damaged")
            }
            let start = local + 30 + Int(b.le16(local + 26)) + Int(b.le16(local + 28))
            guard csize <= b.count - start else {
                throw LoaderError.truncated(path: path, detail: "member '\(name)' needs \(csize) bytes, the archive ends first")
            }
            guard usize <= maxDecompressedBytes, method != 0 || csize == usize else {
                throw LoaderError.malformed(path: path, detail: "member '\(name)' declares \(usize) bytes (stored \(csize)); the zip directory is damaged")
            }
            var member: [UInt8]
            switch method {
            case 0: member = Array(b[start ..< start + csize])
            case 8:
                do {
                    member = try b.withUnsafeBytes { raw in
                        try Zlib.decompress(UnsafeRawBufferPointer(rebasing: raw[start ..< start + csize]),
                                            format: .raw, limit: usize, expectedSize: min(usize, csize * 1032 + 64))
                    }
                } catch let error as ZlibError {
                    throw LoaderError.corruptCompressed(path: "\(path): \(name)", underlying: error)
                }
            default:
                throw LoaderError.malformed(path: path, detail: "member '\(name)' uses zip method \(method); only stored (0) and deflate (8) are supported")
            }
            guard member.count == usize else {
                throw LoaderError.truncated(path: "\(path): \(name)", detail: "\(member.count) bytes, the directory says \(usize)")
            }
            let actual = member.withUnsafeBytes { Zlib.crc32($0) }
            guard actual == crc else {
                throw LoaderError.malformed(path: "\(path): \(name)", detail: "CRC-32 \(hex8(actual)) does not match the stored \(hex8(crc)); the file is damaged")
            }
            let arrayName = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name
            arrays.append(try NPZArray.parseNPY(member, 0 ..< member.count, name: arrayName, path: path))
        }
        return arrays
    }
}

/// A size or offset read from a file as Int; values past Int.max become Int.max (then fail the
/// bounds checks instead of trapping).
func clampedInt(_ v: UInt64) -> Int { v > UInt64(Int.max) ? Int.max : Int(v) }

extension [UInt8] {
    mutating func append16(_ v: UInt16) { append(UInt8(v & 0xFF)); append(UInt8(v >> 8)) }
    mutating func append32(_ v: UInt32) { for s in stride(from: 0, to: 32, by: 8) { append(UInt8((v >> UInt32(s)) & 0xFF)) } }
    func le16(_ at: Int) -> UInt16 { at >= 0 && at + 2 <= count ? UInt16(self[at]) | UInt16(self[at + 1]) << 8 : 0 }
    func le32(_ at: Int) -> UInt32 {
        guard at >= 0, at + 4 <= count else { return 0 }
        return UInt32(self[at]) | UInt32(self[at + 1]) << 8 | UInt32(self[at + 2]) << 16 | UInt32(self[at + 3]) << 24
    }
    func le64(_ at: Int) -> UInt64 { UInt64(le32(at)) | UInt64(le32(at + 4)) << 32 }
}
