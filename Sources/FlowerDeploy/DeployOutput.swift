// Writing rendered objects to disk: one file per object for `flwr deploy --output-dir`.
import Foundation

/// A descriptor that cannot be read or a manifest that cannot be written.
public struct DeployFileError: Error, CustomStringConvertible, Equatable {
    /// What failed, on which path, and what to do.
    public var message: String

    /// The message as given.
    public init(message: String) { self.message = message }

    public var description: String { message }
}

/// Writes each object to its own file in `directory` (created if missing); returns the paths.
public func writeManifests(_ objects: [KubeObject], to directory: String) throws -> [String] {
    let manager = FileManager.default
    do {
        try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
        throw DeployFileError(message: "cannot create --output-dir \(directory) (\(error.localizedDescription)); "
            + "choose a writable directory")
    }
    var paths: [String] = []
    for (position, object) in objects.enumerated() {
        let path = (directory as NSString).appendingPathComponent(object.fileName(position: position))
        do {
            try Data(object.body.rendered().utf8).write(to: URL(fileURLWithPath: path))
            // A Secret holds the token and private keys: readable by its owner only.
            if object.kind == "Secret" { try manager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path) }
        } catch {
            throw DeployFileError(message: "cannot write \(path) (\(error.localizedDescription)); "
                + "choose a writable --output-dir")
        }
        paths.append(path)
    }
    return paths
}
