// A pod of `flwr deploy`'s rendered manifests, started with podman the way a kubelet starts it:
// the container's args, its ConfigMaps' FLWR_* variables (envFrom), the pod's user and group, the
// container's securityContext (read-only root filesystem, dropped capabilities, no privilege
// escalation, seccomp), its volumes (emptyDir and the PersistentVolumeClaim as host folders owned
// by fsGroup, Secrets as read-only folders of their keys with the Secret's defaultMode) and its
// grace period. Everything is read from the manifests; nothing about flwr's flags is written here.
import Foundation
import XCTest
import Yams

/// The objects of one `flwr deploy --output-dir` rendering, by kind and name.
struct RenderedManifests {
    var objects: [String: [String: Any]] = [:]

    init(directory: String) throws {
        for file in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() where file.hasSuffix(".yaml") {
            let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            for document in try Yams.load_all(yaml: text) {
                guard let object = document as? [String: Any], let kind = object["kind"] as? String,
                      let name = (object["metadata"] as? [String: Any])?["name"] as? String else { continue }
                objects["\(kind)/\(name)"] = object
            }
        }
    }

    func object(_ kind: String, _ name: String) throws -> [String: Any] {
        try XCTUnwrap(objects["\(kind)/\(name)"], "no \(kind) \(name) in the rendering: \(objects.keys.sorted())")
    }

    /// A ConfigMap's `data` or a Secret's `stringData`.
    func strings(_ kind: String, _ name: String, field: String) throws -> [String: String] {
        try XCTUnwrap(try object(kind, name)[field] as? [String: String], "\(kind) \(name) has no \(field)")
    }

    /// The pod template of a Deployment or Job.
    func podTemplate(_ kind: String, _ name: String) throws -> PodTemplate {
        let spec = try XCTUnwrap(try object(kind, name)["spec"] as? [String: Any])
        let template = try XCTUnwrap(spec["template"] as? [String: Any])
        return PodTemplate(spec: try XCTUnwrap(template["spec"] as? [String: Any]), manifests: self)
    }
}

/// One pod template and what podman needs to run its (single) container.
struct PodTemplate {
    let spec: [String: Any]
    let manifests: RenderedManifests

    var container: [String: Any] { ((spec["containers"] as? [[String: Any]]) ?? [[:]])[0] }
    var podSecurity: [String: Any] { spec["securityContext"] as? [String: Any] ?? [:] }
    var containerSecurity: [String: Any] { container["securityContext"] as? [String: Any] ?? [:] }
    var args: [String] { container["args"] as? [String] ?? [] }
    /// Kubernetes' default is 30 s when the pod does not say.
    var gracePeriod: Int { spec["terminationGracePeriodSeconds"] as? Int ?? 30 }

    /// The variables of every ConfigMap the container's envFrom names.
    func environment() throws -> [String: String] {
        var env: [String: String] = [:]
        for source in container["envFrom"] as? [[String: Any]] ?? [] {
            let name = try XCTUnwrap((source["configMapRef"] as? [String: Any])?["name"] as? String, "envFrom without configMapRef")
            env.merge(try manifests.strings("ConfigMap", name, field: "data")) { _, new in new }
        }
        return env
    }

    /// The container port of a named port (probes name theirs: `port: http`).
    func containerPort(named name: String) throws -> Int {
        let ports = container["ports"] as? [[String: Any]] ?? []
        return try XCTUnwrap(ports.first { $0["name"] as? String == name }?["containerPort"] as? Int, "no container port \(name)")
    }

    /// A probe's path and container port.
    func probe(_ key: String) throws -> (path: String, port: Int) {
        let get = try XCTUnwrap((container[key] as? [String: Any])?["httpGet"] as? [String: Any], "no \(key).httpGet")
        let path = try XCTUnwrap(get["path"] as? String)
        if let port = get["port"] as? Int { return (path, port) }
        return (path, try containerPort(named: try XCTUnwrap(get["port"] as? String)))
    }

    /// Makes a host folder for every volume the container mounts and returns podman's `-v`
    /// arguments: `emptyDir` and `persistentVolumeClaim` as writable folders owned by
    /// runAsUser:fsGroup (`claims` maps a claim name to the folder standing in for it, so a
    /// restarted pod finds it again), Secrets as folders of their keys (owner root, group fsGroup,
    /// the Secret's defaultMode), mounted read-only where the manifest says so. `secretOverrides`
    /// replaces a Secret volume by a folder prepared by the caller.
    func volumeArguments(in root: String, claims: [String: String], secretOverrides: [String: String] = [:]) throws -> [String] {
        let fm = FileManager.default
        let user = try XCTUnwrap(podSecurity["runAsUser"] as? Int), group = podSecurity["fsGroup"] as? Int ?? user
        var hostPaths: [String: String] = [:]
        for volume in spec["volumes"] as? [[String: Any]] ?? [] {
            let name = try XCTUnwrap(volume["name"] as? String)
            let host: String
            if volume["emptyDir"] != nil || volume["persistentVolumeClaim"] != nil {
                if let claim = (volume["persistentVolumeClaim"] as? [String: Any])?["claimName"] as? String {
                    host = try XCTUnwrap(claims[claim], "no folder for the claim \(claim)")
                } else {
                    host = root + "/" + name
                }
                try fm.createDirectory(atPath: host, withIntermediateDirectories: true)
                XCTAssertEqual(chown(host, uid_t(user), gid_t(group)), 0)
                XCTAssertEqual(chmod(host, 0o770), 0)
            } else if let secret = volume["secret"] as? [String: Any] {
                let secretName = try XCTUnwrap(secret["secretName"] as? String)
                if let override = secretOverrides[secretName] { hostPaths[name] = override; continue }
                host = root + "/" + name
                try fm.createDirectory(atPath: host, withIntermediateDirectories: true)
                let mode = mode_t(secret["defaultMode"] as? Int ?? 0o644)
                for (key, value) in try manifests.strings("Secret", secretName, field: "stringData") {
                    let path = host + "/" + key
                    try value.write(toFile: path, atomically: false, encoding: .utf8)
                    XCTAssertEqual(chown(path, 0, gid_t(group)), 0)
                    XCTAssertEqual(chmod(path, mode), 0)
                }
                XCTAssertEqual(chmod(host, 0o755), 0)
            } else {
                XCTFail("volume \(name) is of a kind this test does not stand in for: \(volume.keys.sorted())")
                continue
            }
            hostPaths[name] = host
        }
        var arguments: [String] = []
        for mount in container["volumeMounts"] as? [[String: Any]] ?? [] {
            let name = try XCTUnwrap(mount["name"] as? String), path = try XCTUnwrap(mount["mountPath"] as? String)
            let host = try XCTUnwrap(hostPaths[name], "the mount \(name) has no volume")
            arguments += ["-v", host + ":" + path + ((mount["readOnly"] as? Bool ?? false) ? ":ro" : "")]
        }
        return arguments
    }

    /// podman's arguments for the pod's securityContext (user, fsGroup, read-only root filesystem
    /// with no writable tmpfs of podman's own, capabilities, privilege escalation, seccomp).
    func securityArguments() throws -> [String] {
        let user = try XCTUnwrap(podSecurity["runAsUser"] as? Int, "the pod sets no runAsUser")
        let group = podSecurity["runAsGroup"] as? Int ?? user
        if podSecurity["runAsNonRoot"] as? Bool == true || containerSecurity["runAsNonRoot"] as? Bool == true {
            XCTAssertNotEqual(user, 0, "runAsNonRoot with runAsUser 0")
        }
        var arguments = ["--user", "\(user):\(group)"]
        if let fsGroup = podSecurity["fsGroup"] as? Int { arguments += ["--group-add", String(fsGroup)] }
        if containerSecurity["readOnlyRootFilesystem"] as? Bool == true { arguments += ["--read-only", "--read-only-tmpfs=false"] }
        let capabilities = containerSecurity["capabilities"] as? [String: Any] ?? [:]
        for cap in capabilities["drop"] as? [String] ?? [] { arguments += ["--cap-drop", cap] }
        for cap in capabilities["add"] as? [String] ?? [] { arguments += ["--cap-add", cap] }
        if containerSecurity["allowPrivilegeEscalation"] as? Bool == false { arguments += ["--security-opt", "no-new-privileges"] }
        let seccomp = (containerSecurity["seccompProfile"] ?? podSecurity["seccompProfile"]) as? [String: Any]
        switch seccomp?["type"] as? String {
        case "RuntimeDefault", nil: break      // podman's default profile
        case "Unconfined": arguments += ["--security-opt", "seccomp=unconfined"]
        case let other: XCTFail("seccompProfile \(other ?? "") is not stood in for here")
        }
        return arguments
    }
}
