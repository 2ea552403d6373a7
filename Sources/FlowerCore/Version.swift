/// The flwr release, reported by `flwr --version` and in Hello/Welcome `agent` strings.
public let flwrVersion = "0.1.0"

/// The FlowerWire protocol version this build speaks (proto/README.md).
public let flwrProtocolVersion: UInt32 = 1
