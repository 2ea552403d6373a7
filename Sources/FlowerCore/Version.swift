/// The flwr release, reported by `flwr --version` and in Hello/Welcome `agent` strings.
public let flwrVersion = "0.1.0"

/// The FlowerWire protocol version this build speaks (proto/README.md): 2 since the secure-aggregation
/// messages (proto/secagg.md), 3 since compressed updates (fp16, int8), 4 since the int4 and top-k update
/// encodings and fp16 broadcasts; a peer of an older version is refused at the handshake.
public let flwrProtocolVersion: UInt32 = 4
