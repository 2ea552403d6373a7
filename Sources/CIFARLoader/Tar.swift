// Tar: the minimal ustar/GNU tar reader the CIFAR-10 archive needs: 512-byte headers (name at 0,
// size in octal at 124, type at 156, ustar prefix at 345), file data padded to 512 bytes, the
// archive ending with zero blocks. Regular files only; GNU long names ('L') are honoured.

/// A regular file inside a tar archive: its path and where its bytes are.
struct TarEntry: Sendable {
    var name: String
    var range: Range<Int>
}

enum Tar {
    /// Lists the regular files of an (uncompressed) tar archive held in `bytes`.
    static func entries(_ bytes: [UInt8], path: String) throws -> [TarEntry] {
        var result: [TarEntry] = []
        var offset = 0
        var longName: String? = nil
        while offset + 512 <= bytes.count {
            let header = bytes[offset ..< offset + 512]
            if header.allSatisfy({ $0 == 0 }) { return result }  // end-of-archive marker
            guard checksumMatches(bytes, at: offset) else {
                throw LoaderError.malformed(path: path, detail: "tar header at byte \(offset) has a bad checksum; the archive is damaged")
            }
            var name = cString(bytes, offset, 100)
            let prefix = cString(bytes, offset + 345, 155)
            if !prefix.isEmpty && bytes[offset + 257 ..< offset + 262].elementsEqual(Array("ustar".utf8)) {
                name = prefix + "/" + name
            }
            guard let size = octal(bytes, offset + 124, 12) else {
                throw LoaderError.malformed(path: path, detail: "tar header at byte \(offset) has an unreadable size field")
            }
            let type = bytes[offset + 156]
            let dataStart = offset + 512
            guard dataStart + size <= bytes.count else {
                throw LoaderError.truncated(path: path, detail: "tar entry '\(name)' needs \(size) bytes, the archive ends after \(bytes.count - dataStart)")
            }
            if type == UInt8(ascii: "L") {
                longName = cString(bytes, dataStart, size)
            } else {
                if type == 0 || type == UInt8(ascii: "0") || type == UInt8(ascii: "7") {
                    result.append(TarEntry(name: longName ?? name, range: dataStart ..< dataStart + size))
                }
                longName = nil
            }
            offset = dataStart + (size + 511) / 512 * 512
        }
        if result.isEmpty && offset == bytes.count {
            throw LoaderError.malformed(path: path, detail: "the tar archive holds no files")
        }
        if offset < bytes.count {
            throw LoaderError.truncated(path: path, detail: "tar archive ends inside a header at byte \(offset)")
        }
        return result  // no end marker: accept what was complete
    }

    /// The header checksum: the sum of all 512 bytes with the checksum field read as spaces.
    static func checksumMatches(_ b: [UInt8], at offset: Int) -> Bool {
        guard let stored = octal(b, offset + 148, 8) else { return false }
        var sum = 0
        for i in 0 ..< 512 { sum += (148 ..< 156).contains(i) ? 32 : Int(b[offset + i]) }
        return sum == stored
    }

    /// A NUL/space-terminated octal field, or nil if it holds anything else.
    static func octal(_ b: [UInt8], _ start: Int, _ length: Int) -> Int? {
        var value = 0, seen = false
        for i in start ..< start + length {
            let c = b[i]
            if c == 0 || c == 32 { if seen { break } else { continue } }
            guard c >= 48 && c <= 55 else { return nil }
            guard value < Int.max >> 4 else { return nil }
            value = value * 8 + Int(c - 48); seen = true
        }
        return value
    }

    /// A NUL-terminated string field.
    static func cString(_ b: [UInt8], _ start: Int, _ length: Int) -> String {
        let field = b[start ..< min(start + length, b.count)]
        let end = field.firstIndex(of: 0) ?? field.endIndex
        return String(decoding: field[field.startIndex ..< end], as: UTF8.self)
    }

    /// Builds a ustar archive of `files` (name, content): used by tests and fixtures.
    static func archive(_ files: [(String, [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        for (name, content) in files {
            var h = [UInt8](repeating: 0, count: 512)
            for (i, c) in name.utf8.prefix(100).enumerated() { h[i] = c }
            func put(_ s: String, _ at: Int) { for (i, c) in s.utf8.enumerated() { h[at + i] = c } }
            put("0000644\0", 100); put("0001750\0", 108); put("0001750\0", 116)
            let size = String(content.count, radix: 8)
            put(String(repeating: "0", count: 11 - size.count) + size + "\0", 124)
            put("14717165140\0", 136)
            h[156] = UInt8(ascii: "0")
            put("ustar\0", 257); put("00", 263)
            let sum = h.enumerated().reduce(0) { $0 + ((148 ..< 156).contains($1.offset) ? 32 : Int($1.element)) }
            let s = String(sum, radix: 8)
            put(String(repeating: "0", count: 6 - s.count) + s + "\0 ", 148)
            out += h
            out += content
            out += [UInt8](repeating: 0, count: (512 - content.count % 512) % 512)
        }
        out += [UInt8](repeating: 0, count: 1024)
        return out
    }
}
