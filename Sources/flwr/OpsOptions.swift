// Operations flags (--http-port, --http-host, --tensorboard-dir); FlowerRuntime wires them.
import ArgumentParser
import FlowerRuntime

/// `--http-port` and its bind address, on `flwr server` and `flwr client`.
struct OpsOptions: ParsableArguments {
    @Option(help: "Serve GET /healthz, /readyz and /metrics (Prometheus) over HTTP on this port (off when absent; 0: any free port).") var httpPort: Int?
    @Option(help: "Address the --http-port listener binds (default: --host on the server, 0.0.0.0 on a client).") var httpHost: String?

    /// The library's form of these flags.
    var config: OpsConfig { OpsConfig(port: httpPort, host: httpHost) }
}

/// `--tensorboard-dir` on `flwr server`, `simulate` and `train`.
struct TensorBoardOptions: ParsableArguments {
    @Option(help: "Write the per-round (train: per-epoch) history as TensorBoard event files into this folder: scalars accuracy, loss, round_seconds and, with differential privacy, epsilon.") var tensorboardDir: String?
}
