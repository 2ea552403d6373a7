import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File errors of the server's outputs (history, checkpoints, plots).
public enum FileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be created or opened.
    case open(path: String, detail: String)
    /// Writing or flushing failed.
    case write(path: String, detail: String)
    /// Moving the finished temporary file over the target failed.
    case rename(from: String, to: String, errno: Int32)

    public var description: String {
        switch self {
        case .open(let p, let d):
            return "cannot open \(p): \(d); check that the directory exists and is writable"
        case .write(let p, let d):
            return "cannot write \(p): \(d); check free disk space and permissions"
        case .rename(let f, let t, let e):
            return "rename(\(f), \(t)) failed with errno \(e) (\(String(cString: strerror(e)))); " + Self.renameAdvice(e, target: t)
        }
    }

    /// What to do about a failed rename of a finished file over `target`, by its errno.
    static func renameAdvice(_ e: Int32, target: String) -> String {
        switch e {
        case EISDIR, ENOTEMPTY, EEXIST: return "\(target) is a directory: remove it or choose another output path"
        case EACCES, EPERM, EROFS: return "make \(target) and its directory writable, or choose another output path"
        case ENOSPC, EDQUOT: return "free disk space"
        default: return "check \(target) and its directory"
        }
    }
}

/// Whole-file writes that a reader never sees half-done: write a temporary file beside the
/// target, flush it to disk, then `rename(2)` it over the target (atomic on POSIX filesystems).
public enum AtomicFile {
    /// Writes `bytes` to `path` atomically.
    public static func write(_ bytes: [UInt8], to path: String) throws(FileError) {
        let temp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temp, contents: nil),
              let handle = FileHandle(forWritingAtPath: temp) else {
            throw FileError.open(path: temp, detail: "cannot create the temporary file")
        }
        do {
            try handle.write(contentsOf: bytes)
            try handle.synchronize()
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temp)
            throw FileError.write(path: temp, detail: "\(error)")
        }
        guard rename(temp, path) == 0 else {
            let e = errno
            try? FileManager.default.removeItem(atPath: temp)
            throw FileError.rename(from: temp, to: path, errno: e)
        }
    }
}
