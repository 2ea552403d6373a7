/// The flwr release, reported by `flwr --version` and in Hello/Welcome `agent` strings.
public let flwrVersion = "0.1.0"

/// The FlowerWire protocol version this build speaks (proto/README.md): 2 since the secure-aggregation
/// messages (proto/secagg.md); a peer of version 1 is refused at the handshake.
public let flwrProtocolVersion: UInt32 = 3
