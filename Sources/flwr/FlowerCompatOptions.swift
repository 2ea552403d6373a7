// Flower compatibility flags (FlowerCompat): `flwr server --flower-port` serves Flower's legacy
// gRPC protocol to unmodified Flower clients beside our own wire, and `flwr client
// --flower-server` joins a Flower server with our model. FlowerRuntime starts them.
import ArgumentParser
import FlowerCompat
import FlowerRuntime

/// `--flower-port` and friends on `flwr server`.
struct FlowerServerCompatOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Also serve Flower's own gRPC protocol (FlowerService/Join, what Flower's start_client/start_numpy_client and its iOS/Android SDKs speak) on this port, so unmodified Flower clients join the same federation as flwr clients (off when absent; 0: any free port).", discussion: "Listens on --host. Flower clients need no change but the server address; their tensors must match the server's model (--model/--dataset), or run with --dataset none to take the first client's model.")) var flowerPort: Int?
    @Option(help: "Largest message accepted from a Flower client, in MB (Flower's own default: 512).") var flowerMaxMessageMb: Int = 512
    @Option(help: "PEM certificate chain for TLS on --flower-port (with --flower-tls-key; Flower clients then pass root_certificates). Without it the Flower port is plaintext, as Flower's start_server without certificates.") var flowerTlsCert: String?
    @Option(help: "PEM private key of --flower-tls-cert.") var flowerTlsKey: String?

    func validate() throws { _ = try config() }

    /// The listener's settings when --flower-port is set (FlowerRuntime fills in the host and
    /// the model to check tensors against); nil otherwise.
    func config() throws -> FlowerCompatServerConfig? {
        try validating { try FlowerCompatServerConfig(port: flowerPort, maxMessageMb: flowerMaxMessageMb, tlsCert: flowerTlsCert, tlsKey: flowerTlsKey) }
    }
}

/// `--flower-server` and friends on `flwr client`.
struct FlowerClientCompatOptions: ParsableArguments {
    @Option(help: "Join a Flower server (Flower's start_server, legacy gRPC protocol) at HOST:PORT instead of a flwr server; the Python side must run the same model.") var flowerServer: String?
    @Option(help: "PEM file of the CA that signed the Flower server's certificate (TLS; without it the connection is plaintext).") var flowerRootCert: String?
    @Option(help: "Largest message accepted from the Flower server, in MB (Flower's own default: 512).") var flowerMaxMessageMb: Int = 512

    func validate() throws { _ = try config() }

    /// The settings for joining the Flower server when --flower-server is set (FlowerRuntime fills
    /// in the connect deadline and seed); nil otherwise.
    func config() throws -> FlowerCompatClientConfig? {
        try validating { try FlowerCompatClientConfig(server: flowerServer, maxMessageMb: flowerMaxMessageMb, rootCertificate: flowerRootCert) }
    }
}
