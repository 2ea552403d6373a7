// FileIO: whole-file reads and writes with errors that name the path, and transparent gunzip.
import FlowerZlib
import Foundation

/// Largest decompressed size accepted from a .gz dataset file (CIFAR-10's tar is ~185 MB).
let maxDecompressedBytes = 4 << 30

/// True if a regular file exists at `path`.
func fileExists(_ path: String) -> Bool {
    var isDir: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue
}

/// True if a directory exists at `path`.
func directoryExists(_ path: String) -> Bool {
    var isDir: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
}

/// Reads the whole file at `path`.
func readFileBytes(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 {
        let err = errno
        if err == ENOENT { throw LoaderError.missingFile(path: path, hint: "check the path (--data-dir)") }
        throw LoaderError.unreadable(path: path, reason: String(cString: strerror(err)))
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw LoaderError.unreadable(path: path, reason: String(cString: strerror(errno))) }
    let size = Int(st.st_size)
    var out = [UInt8](repeating: 0, count: size)
    var done = 0
    try out.withUnsafeMutableBytes { buf in
        while done < size {
            let n = read(fd, buf.baseAddress! + done, size - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw LoaderError.unreadable(path: path, reason: "read: " + String(cString: strerror(errno)))
            }
            if n == 0 { break }
            done += n
        }
    }
    if done < size { out.removeSubrange(done...) }
    return out
}

/// Reads `path` and gunzips it if it starts with the gzip magic (1f 8b); a corrupt or cut
/// stream becomes `LoaderError.corruptCompressed` naming the file.
func readMaybeGzip(_ path: String) throws -> [UInt8] {
    let raw = try readFileBytes(path)
    guard raw.count >= 2, raw[0] == 0x1F, raw[1] == 0x8B else {
        if path.hasSuffix(".gz") && !raw.isEmpty {
            throw LoaderError.wrongMagic(path: path, expected: "1f 8b (gzip)", found: hexPrefix(raw, 2))
        }
        return raw
    }
    // ISIZE (last 4 bytes, little-endian) is the uncompressed size mod 2^32: a sizing hint only.
    var hint: Int? = nil
    if raw.count >= 18 {
        let n = raw.count
        hint = Int(raw[n - 4]) | Int(raw[n - 3]) << 8 | Int(raw[n - 2]) << 16 | Int(raw[n - 1]) << 24
        // Deflate expands at most ~1032:1, so a larger ISIZE is a cut or damaged trailer.
        if hint == 0 || hint! > raw.count * 1032 { hint = nil }
    }
    do {
        return try Zlib.decompress(raw, format: .gzip, limit: maxDecompressedBytes, expectedSize: hint)
    } catch let error as ZlibError {
        throw LoaderError.corruptCompressed(path: path, underlying: error)
    }
}

/// Writes `bytes` to `path` atomically (a temporary file renamed over the target).
func writeFileAtomically(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
    let file = try AtomicFile(path)
    try file.write(bytes)
    try file.commit()
}

/// A file written under a temporary name and renamed over `path` by `commit()`, so readers
/// never see half a file; `discard()` (or an error) removes the temporary.
final class AtomicFile {
    let path: String
    private let tmp: String
    private var fd: Int32

    init(_ path: String) throws {
        self.path = path
        tmp = path + ".tmp-\(getpid())"
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LoaderError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
    }

    deinit { if fd >= 0 { discard() } }

    /// Appends `bytes`, retrying partial writes and EINTR.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                discard()
                throw LoaderError.writeFailed(path: path, reason: "write: " + reason)
            }
            done += n
        }
    }

    /// Appends a byte array.
    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Flushes to disk and renames over the target.
    func commit() throws {
        guard fsync(fd) == 0 || errno == EINVAL else {
            let reason = String(cString: strerror(errno))
            discard()
            throw LoaderError.writeFailed(path: path, reason: "fsync: " + reason)
        }
        close(fd); fd = -1
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw LoaderError.writeFailed(path: path, reason: "rename: " + reason)
        }
    }

    /// Abandons the file.
    func discard() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tmp)
    }
}

/// CRC-32 of a buffer (zip, fingerprints).
func crc32Bytes(_ bytes: UnsafeRawBufferPointer) -> UInt32 { Zlib.crc32(bytes) }

/// The first `n` bytes as hex ("00 00 08 03").
func hexPrefix(_ bytes: [UInt8], _ n: Int) -> String {
    bytes.prefix(n).map { b in let s = String(b, radix: 16); return s.count == 1 ? "0" + s : s }
        .joined(separator: " ")
}

/// Joins a directory and a file name.
func joinPath(_ dir: String, _ name: String) -> String {
    dir.hasSuffix("/") ? dir + name : dir + "/" + name
}

/// The product of `values`, or nil if it overflows Int (sizes read from untrusted headers).
func checkedProduct(_ values: [Int]) -> Int? {
    var p = 1
    for v in values {
        guard v >= 0 else { return nil }
        let (r, o) = p.multipliedReportingOverflow(by: v)
        if o { return nil }
        p = r
    }
    return p
}
