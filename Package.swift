// swift-tools-version:6.1
// flwr: federated learning in one Swift binary. The module graph is drawn in README.md ("How it is built").
import PackageDescription

/// Static archives of the C libraries, so the shipped binary needs no libprotobuf-c/libz .so
/// (linking `:libX.a` by file name makes the linker take the archive over the .so). Both archives come with the Debian -dev packages.
let protobufCArchive: LinkerSetting = .linkedLibrary(":libprotobuf-c.a")
let zlibArchive: LinkerSetting = .linkedLibrary(":libz.a")
/// Dependencies (grpc-swift-nio-transport, swift-nio-extras) link `-lz`, which would pull in
/// libz.so: this folder, first on the library path, holds a linker script named libz.so that
/// links the static archive instead (Sources/CZlib/link/libz.so).
let zlibStatic: LinkerSetting = .unsafeFlags(["-L" + Context.packageDirectory + "/Sources/CZlib/link"])

let package = Package(
    name: "flwr",
    products: [
        .executable(name: "flwr", targets: ["flwr"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        /// YAML for `flwr deploy`'s FLDeployment descriptors and rendered manifests.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        /// The wire's transport: event loops, channel pipelines, backpressure (DESIGN.md "Modules").
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        /// CSV for `--dataset csv` (a streaming reader that hands back each row as it is, so ragged
        /// rows are seen; SwiftCSV pads them silently).
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.2"),
        /// Operations (FlowerOps): the metrics API and its Prometheus text exposition for /metrics.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        /// FlowerCompat: Flower's legacy gRPC protocol (FlowerService/Join) over HTTP/2.
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        /// TLS 1.3 and mutual TLS on the wire (FlowerTLS), certificates for `flwr certs`, and
        /// swift-crypto's SHA-256/HMAC and constant-time comparison.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        // MARK: C libraries
        /// libprotobuf-c's runtime headers (Debian libprotobuf-c-dev).
        .systemLibrary(name: "CProtobufC", path: "Sources/CProtobufC",
                       providers: [.apt(["libprotobuf-c-dev"])]),
        /// The code protoc-c generates from proto/flower.proto (scripts/gen-proto; committed).
        .target(name: "CFlowerProto", dependencies: ["CProtobufC"], path: "Sources/CFlowerProto",
                linkerSettings: [protobufCArchive]),
        /// The code protoc-c generates from proto/onnx/onnx.proto, ONNX's schema (scripts/gen-onnx;
        /// committed): `flwr export --format onnx` packs ModelProto messages with it.
        .target(name: "CONNXProto", dependencies: ["CProtobufC"], path: "Sources/CONNXProto",
                linkerSettings: [protobufCArchive]),
        /// The code protoc-c generates from proto/flower-compat/transport.proto, Flower's own legacy
        /// schema (Apache-2.0; scripts/gen-proto; committed): FlowerCompat's messages.
        .target(name: "CFlowerCompatProto", dependencies: ["CProtobufC"], path: "Sources/CFlowerCompatProto",
                linkerSettings: [protobufCArchive]),
        /// zlib (Debian zlib1g-dev), with the init macros wrapped as inline functions.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        /// Swift wrapper over zlib shared by the wire (frame compression) and the loaders (.gz).
        .target(name: "FlowerZlib", dependencies: ["CZlib"], linkerSettings: [zlibArchive, zlibStatic]),

        // MARK: Swift modules
        /// Primitives every layer shares and none owns: the seeded SplitMix64, Duration in seconds.
        .target(name: "FlowerBase"),
        /// CPU feature probe (cpuid/xgetbv) the baseline dispatcher uses to pick a GEMM variant.
        .target(name: "CTensorCPU", path: "Sources/Tensor/CPU"),
        /// The GEMM packing loops and micro-kernel (and the implicit-im2col convolution packing
        /// built on them: GEMMKernels/ConvGEMM.swift), compiled three times from the same files
        /// (Sources/Tensor/GEMMKernels; the AVX2/AVX512 folders are symlinks to it) with different
        /// CPU targets. `Tensor` calls only the variant the running CPU supports, so the one
        /// binary runs on any x86-64 and uses AVX2/FMA or AVX-512 where present.
        /// Baseline: SSE2 only, no unsafe flags.
        .target(name: "TensorGEMMBaseline", path: "Sources/Tensor/GEMMKernels",
                swiftSettings: [.define("GEMM_BASELINE")]),
        /// AVX2+FMA (haswell). `-target-cpu haswell` is what turns SIMD `addingProduct` into
        /// vfmadd instead of `fmaf` calls (~1 GFLOPS); `-Ounchecked` gained 10-30% in the packing
        /// loops: `flwr bench train` (gemm figures), BENCHMARKS.md "Training engine".
        .target(name: "TensorGEMMAVX2", path: "Sources/TensorGEMMAVX2",
                swiftSettings: [.define("GEMM_AVX2"), .define("GEMM_FMA"),
                                .unsafeFlags(["-target-cpu", "haswell"]),
                                .unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        /// AVX-512 (skylake-avx512): 512-bit FMA for the 8x32 micro-kernel; same benchmark and
        /// same reasons as above.
        .target(name: "TensorGEMMAVX512", path: "Sources/TensorGEMMAVX512",
                swiftSettings: [.define("GEMM_AVX512"), .define("GEMM_FMA"),
                                .unsafeFlags(["-target-cpu", "skylake-avx512"]),
                                .unsafeFlags(["-Ounchecked"], .when(configuration: .release))]),
        .target(name: "Tensor", dependencies: ["FlowerBase", "CTensorCPU", "TensorGEMMBaseline", "TensorGEMMAVX2",
                                               "TensorGEMMAVX512"],
                exclude: ["CPU", "GEMMKernels"]),
        .target(name: "CNNModel", dependencies: ["Tensor"]),
        /// numpy's .npy header, written and parsed for CIFARLoader's files and FlowerCompat's tensors.
        .target(name: "NPYFormat"),
        .target(name: "CIFARLoader", dependencies: ["Tensor", "FlowerZlib", "NPYFormat",
                                                   .product(name: "CSV", package: "CSV.swift")]),
        /// ONNX export of any resolved network (zoo or spec) with its trained weights.
        .target(name: "ONNXExport", dependencies: ["CNNModel", "CONNXProto"]),
        .target(name: "FlowerCore", dependencies: ["FlowerBase", "SecureAggregation", .product(name: "Logging", package: "swift-log")]),
        .target(name: "FedAvg", dependencies: ["FlowerCore"]),
        /// Flower's other strategies (FedAvgM, FedProx, FedOpt, FedMedian, FedTrimmedAvg, Krum, Bulyan).
        .target(name: "Strategies", dependencies: ["FlowerCore", "FedAvg"]),
        /// Attack simulation: a decorator over FlowerCore's `Client` (sign-flip, scale, gaussian, ...).
        .target(name: "Attacks", dependencies: ["FlowerCore"]),
        /// User-level DP: the RDP accountant (pure maths) and the DP-FedAvg strategy wrapper;
        /// swift-crypto's AES for the noise's keystream (DPRandom.swift).
        .target(name: "Privacy", dependencies: ["FlowerCore", .product(name: "Logging", package: "swift-log"),
                                                .product(name: "Crypto", package: "swift-crypto")]),
        /// The wire's codec: frames, the protobuf mapping of every message, the peer limits checked
        /// on raw protobuf, tensor scanning and the NIO frame decoder (NIOCore only, no sockets).
        /// What scripts/fuzz-wire builds.
        .target(name: "FlowerWireCodec", dependencies: [
            "FlowerCore", "FlowerBase", "CFlowerProto", "FlowerZlib",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        /// The wire's transport: server, client, session handlers and pipelines on NIOPosix
        /// (re-exports FlowerWireCodec, so `import FlowerWire` gives the whole wire).
        .target(name: "FlowerWire", dependencies: [
            "FlowerWireCodec", "FlowerCore", "FlowerBase",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        /// A swarm of lightweight wire clients in one process, for load-testing a server
        /// (`flwr bench clients`, the scale tests); not part of the product's wire.
        .target(name: "WireLoadTest", dependencies: [
            "FlowerWire", "FlowerCore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        /// The fuzzing entry (untrusted bytes through the NIO frame decoder in an EmbeddedChannel,
        /// the limits, the budgeted unpack and the mapping): linked into Fuzz/WireFuzzer.swift by
        /// scripts/fuzz-wire, and run on seeded mutations by FlowerWireTests.
        .target(name: "WireFuzzEntry", dependencies: [
            "FlowerWireCodec", "FlowerZlib",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ], path: "Fuzz/WireFuzzEntry"),
        /// Flower's legacy gRPC protocol (FlowerService/Join, transport.proto): unmodified Flower
        /// clients as FlowerCore `ClientProxy`s, and a FlowerCore `Client` joining a Flower server.
        /// FlowerWire stays free of gRPC (scripts/fuzz-wire builds it alone).
        /// Its peer limits (tensors, map entries) are the wire codec's `WireLimits`; its
        /// one-outstanding-call state is FlowerCore's `OutstandingCall`, as the wire's.
        .target(name: "FlowerCompat", dependencies: [
            "FlowerCore", "FlowerWireCodec", "CFlowerCompatProto", "NPYFormat",
            .product(name: "Logging", package: "swift-log"),
            /// The event-loop group grpc-swift-nio-transport serves on, whose timers carry the call deadlines.
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        ]),
        /// TLS 1.3 / mutual TLS for the wire: NIOSSL handlers inserted through FlowerWire's
        /// `ChannelSecurity` hook, certificate authority and leaf issuance for `flwr certs`.
        /// Kept out of FlowerWire so `scripts/fuzz-wire` never compiles BoringSSL.
        .target(name: "FlowerTLS", dependencies: [
            "FlowerWire",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
        ]),
        /// The glue between federation and models: a FlowerCore `Client` and the server's central
        /// evaluation over any CNNModel `Model`, the model pool and its dedicated compute threads.
        .target(name: "FlowerLearning", dependencies: [
            "FlowerCore", "CNNModel", "CIFARLoader", "Privacy", .product(name: "Logging", package: "swift-log"),
        ]),
        /// The code protoc-c generates from proto/tensorboard/tensorboard.proto (TensorBoard's Event
        /// and Summary, the subset flwr writes; scripts/gen-proto; committed).
        .target(name: "CTensorBoardProto", dependencies: ["CProtobufC"], path: "Sources/CTensorBoardProto",
                linkerSettings: [protobufCArchive]),
        /// Operations: the HTTP listener for /healthz, /readyz and /metrics (NIOHTTP1 on the wire's
        /// event loops), the Prometheus metrics of servers and clients, JSON log lines, and
        /// TensorBoard event files.
        .target(name: "FlowerOps", dependencies: [
            "FlowerCore", "FlowerBase", "CTensorBoardProto",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        /// `flwr deploy`'s FLDeployment descriptor → Kubernetes objects (YAML in and out).
        .target(name: "FlowerDeploy", dependencies: ["FlowerCore", "FlowerIdentity", .product(name: "Yams", package: "Yams")]),
        /// The identity contract between a deployment and its clients (FLWR_PARTITION,
        /// JOB_COMPLETION_INDEX, the hostname ordinal, default client ids): FlowerDeploy renders
        /// it, FlowerRuntime's client reads it.
        .target(name: "FlowerIdentity"),
        /// What the commands run, usable and tested without the executable: `Simulation`,
        /// `ServerRuntime`, `ClientRuntime`, `CentralTraining`, the exposure policy, the strategy
        /// catalog, client data selection, lifecycle (signals, linger) and outputs.
        .target(name: "FlowerRuntime", dependencies: [
            "FlowerCore", "FlowerWire", "FlowerTLS", "FlowerCompat", "FlowerOps", "FlowerLearning", "FlowerIdentity",
            "FlowerDeploy", "ONNXExport", "FedAvg", "Strategies", "Attacks", "Privacy", "CNNModel", "CIFARLoader",
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// The benchmarks behind `flwr bench train|wire|clients`: the training engine, the wire's
        /// codec and loopback round trips, and a swarm of idle clients; each figure one JSON line.
        .target(name: "FlowerBench", dependencies: [
            "FlowerRuntime", "FlowerWire", "WireLoadTest", "FlowerTLS", "FlowerLearning", "CNNModel", "Tensor", "FlowerCore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        /// FLWR_* environment variables as a second source for every option of an ArgumentParser
        /// command tree (read from ArgumentParser's own description of the tree).
        .target(name: "ArgumentEnvironment", dependencies: [
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        /// Secure aggregation (SecAgg+): client and server state machines with no I/O, over swift-crypto.
        .target(name: "SecureAggregation", dependencies: ["FlowerBase", .product(name: "Crypto", package: "swift-crypto")]),
        .executableTarget(name: "flwr", dependencies: [
            "FlowerCore", "FlowerWire", "FedAvg", "Strategies", "Attacks", "Privacy", "CNNModel", "CIFARLoader", "Tensor",
            "FlowerLearning", "ONNXExport", "FlowerDeploy", "FlowerOps", "FlowerCompat", "FlowerTLS",
            "FlowerIdentity", "FlowerRuntime", "FlowerBench", "ArgumentEnvironment",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),

        // MARK: Tests
        /// What the test targets share: running programs and Python peers, log capture, skips that
        /// name their fix, fake client handles.
        .target(name: "TestSupport", dependencies: ["FlowerCore", .product(name: "Logging", package: "swift-log")],
                path: "Tests/TestSupport"),
        .testTarget(name: "FlowerZlibTests", dependencies: ["FlowerZlib"]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "CNNModelTests", dependencies: ["CNNModel", "Tensor"]),
        .testTarget(name: "ONNXExportTests", dependencies: ["ONNXExport", "CNNModel", "CONNXProto", "CIFARLoader", "FlowerLearning", "TestSupport"]),
        .testTarget(name: "NPYFormatTests", dependencies: ["NPYFormat"]),
        .testTarget(name: "CIFARLoaderTests", dependencies: ["CIFARLoader", "FlowerZlib", "TestSupport"]),
        .testTarget(name: "FlowerCoreTests", dependencies: [
            "FlowerCore", "FedAvg", "TestSupport", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "FedAvgTests", dependencies: ["FedAvg", "FlowerCore", "TestSupport"]),
        .testTarget(name: "StrategiesTests", dependencies: ["Strategies", "FedAvg", "FlowerCore", "TestSupport"]),
        .testTarget(name: "AttacksTests", dependencies: ["Attacks", "FlowerCore"]),
        .testTarget(name: "FlowerWireTests", dependencies: [
            "FlowerWire", "FlowerWireCodec", "WireFuzzEntry", "FlowerCore", "FlowerBase", "CFlowerProto", "FlowerTLS", "TestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        .testTarget(name: "FlowerCompatTests", dependencies: [
            "FlowerCompat", "FlowerCore", "FlowerWireCodec", "CFlowerCompatProto", "TestSupport",
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        ]),
        .testTarget(name: "FlowerTLSTests", dependencies: [
            "FlowerTLS", "FlowerWire", "FlowerCore", "TestSupport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "FlowerDeployTests", dependencies: ["FlowerDeploy", .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "FlowerOpsTests", dependencies: [
            "FlowerOps", "FlowerCore", "CTensorBoardProto",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "flwrTests", dependencies: [
            "flwr", "ArgumentEnvironment", "FlowerRuntime", "TestSupport", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "ArgumentEnvironmentTests", dependencies: [
            "ArgumentEnvironment", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        /// The benchmarks' flag rules (no measurement).
        .testTarget(name: "FlowerBenchTests", dependencies: ["FlowerBench", "FlowerRuntime", "FlowerLearning", "WireLoadTest"]),
        .testTarget(name: "FlowerRuntimeTests", dependencies: [
            "FlowerRuntime", "FlowerIdentity", "FlowerCore", "FlowerWire", "FedAvg", "Strategies", "CIFARLoader",
            "FlowerLearning", "CNNModel", "Privacy", "Attacks", "FlowerTLS", "FlowerCompat", .product(name: "Logging", package: "swift-log"),
        ]),
        /// The image built by scripts/image and run with podman as `flwr deploy`'s manifests start
        /// the pods (reads the rendered YAML with Yams; runs the release flwr binary).
        .testTarget(name: "FlowerContainerTests", dependencies: [.product(name: "Yams", package: "Yams")]),
        .testTarget(name: "PrivacyTests", dependencies: ["Privacy", "FlowerCore", "FedAvg", "TestSupport"]),
        .testTarget(name: "SecureAggregationTests", dependencies: [
            "SecureAggregation", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "FlowerLearningTests", dependencies: [
            "FlowerLearning", "CNNModel", "FlowerCore", "CIFARLoader", "Privacy", "TestSupport",
            .product(name: "Logging", package: "swift-log"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
