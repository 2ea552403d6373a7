// swift-tools-version:6.1
// flwr: federated learning in one Swift binary. Module graph: ../shared/DESIGN.md ("Modules").
import PackageDescription

/// Static archives of the C libraries, so the shipped binary needs no libprotobuf-c/libz .so
/// (../shared/FACTS.md, "Static linking"). Both archives come with the Debian -dev packages.
let protobufCArchive: LinkerSetting = .linkedLibrary(":libprotobuf-c.a")
let zlibArchive: LinkerSetting = .linkedLibrary(":libz.a")

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
    ],
    targets: [
        // MARK: C libraries
        /// libprotobuf-c's runtime headers (Debian libprotobuf-c-dev).
        .systemLibrary(name: "CProtobufC", path: "Sources/CProtobufC",
                       providers: [.apt(["libprotobuf-c-dev"])]),
        /// The code protoc-c generates from proto/flower.proto (scripts/gen-proto; committed).
        .target(name: "CFlowerProto", dependencies: ["CProtobufC"], path: "Sources/CFlowerProto",
                linkerSettings: [protobufCArchive]),
        /// zlib (Debian zlib1g-dev), with the init macros wrapped as inline functions.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        /// Swift wrapper over zlib shared by the wire (frame compression) and the loaders (.gz).
        .target(name: "FlowerZlib", dependencies: ["CZlib"], linkerSettings: [zlibArchive]),

        // MARK: Swift modules
        .target(name: "Tensor"),
        .target(name: "CNNModel", dependencies: ["Tensor"]),
        .target(name: "CIFARLoader", dependencies: ["Tensor", "FlowerZlib"]),
        .target(name: "FlowerCore", dependencies: [.product(name: "Logging", package: "swift-log")]),
        .target(name: "FedAvg", dependencies: ["FlowerCore"]),
        .target(name: "FlowerWire", dependencies: [
            "FlowerCore", "CFlowerProto", "FlowerZlib",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "flwr", dependencies: [
            "FlowerCore", "FlowerWire", "FedAvg", "CNNModel", "CIFARLoader", "Tensor",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
        ]),

        // MARK: Tests
        .testTarget(name: "FlowerZlibTests", dependencies: ["FlowerZlib"]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "CNNModelTests", dependencies: ["CNNModel", "Tensor"]),
        .testTarget(name: "CIFARLoaderTests", dependencies: ["CIFARLoader", "FlowerZlib"]),
        .testTarget(name: "FlowerCoreTests", dependencies: [
            "FlowerCore", "FedAvg", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "FedAvgTests", dependencies: ["FedAvg", "FlowerCore"]),
        .testTarget(name: "FlowerWireTests", dependencies: ["FlowerWire", "FlowerCore", "CFlowerProto"]),
        .testTarget(name: "flwrTests", dependencies: ["flwr"]),
    ],
    swiftLanguageModes: [.v6]
)
