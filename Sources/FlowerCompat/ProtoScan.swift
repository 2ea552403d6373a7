// A walk over raw protobuf bytes that counts fields before libprotobuf-c unpacks them.
//
// libprotobuf-c allocates a C struct per submessage, map entry and repeated element: a message of
// tiny fields (a 2-byte map entry becomes ~100 bytes of structs) would make the unpacker allocate
// many times its own size. This walk follows the schema's submessages (transport.proto) and refuses
// a message with more fields than the limits allow, allocating nothing. Malformed wire data is left
// for libprotobuf-c to reject. Fields are read by FlowerWireCodec's reader (`TensorScanner.Scanner`),
// the one the wire's `PayloadLimits` walk uses; only the schema and what is checked differ (the
// wire checks every field's type, text and decode cost; here a count is what libprotobuf-c needs).

import FlowerWireCodec

/// Counts the fields of a Flower message before it is unpacked.
enum ProtoScan {
    /// Which fields of a message are themselves messages to descend into.
    indirect enum Schema: Sendable {
        case message([UInt64: Schema])
        case leaf
    }

    /// Fields accepted in one message, all levels together: every tensor and map entry within the
    /// limits (65,536 tensors, 4,096 entries of 3 fields each), with room to spare.
    static let maxFields = CompatLimits.maxTensors + 4 * CompatLimits.maxMapEntries + 1_024

    private static let scalar = Schema.message([:])
    private static let mapEntry = Schema.message([2: scalar])
    private static let parameters = Schema.leaf        // repeated bytes + a string: counted, not descended
    private static let status = Schema.leaf

    static let clientMessage = Schema.message([
        1: .leaf,
        2: .message([1: status, 2: mapEntry]),
        3: .message([1: status, 2: .message([:])]),
        4: .message([1: status, 2: .message([:]), 4: mapEntry]),
        5: .message([1: status, 4: mapEntry]),
    ])
    static let serverMessage = Schema.message([
        1: .leaf,
        2: .message([1: mapEntry]),
        3: .message([1: mapEntry]),
        4: .message([1: .message([:]), 2: mapEntry]),
        5: .message([1: .message([:]), 2: mapEntry]),
    ])

    /// Nil when the message is within the limits (or malformed, which the unpacker reports);
    /// otherwise why it is refused.
    static func check(_ bytes: UnsafeRawBufferPointer, schema: Schema) -> String? {
        var count = 0
        guard walk(TensorScanner.Scanner(bytes: bytes), from: 0, to: bytes.count, schema, &count, depth: 0) else {
            return "more than \(maxFields) protobuf fields in one message (tensors, map entries); refused before decoding"
        }
        return nil
    }

    /// False when the field count passes the limit. Fields are read by the wire codec's field
    /// reader; bytes it cannot read end the count (libprotobuf-c then refuses them with its reason).
    private static func walk(_ scanner: TensorScanner.Scanner, from start: Int, to end: Int, _ schema: Schema,
                             _ count: inout Int, depth: Int) -> Bool {
        guard case .message(let children) = schema, depth < 8 else { return true }
        var pos = start
        while pos < end {
            guard let f = try? scanner.field(at: pos, end: end, in: .named("Flower message")) else { return true }
            count += 1
            if count > maxFields { return false }
            if f.wireType == 2, let child = children[UInt64(f.number)] {
                guard walk(scanner, from: f.valueStart, to: f.end, child, &count, depth: depth + 1) else { return false }
            }
            pos = f.end
        }
        return true
    }
}
