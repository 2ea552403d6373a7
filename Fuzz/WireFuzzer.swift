// libFuzzer target: the frame decoder, TensorScanner and both envelopes' protobuf mapping
// (WireFuzzing.exercise).
// Built and run by scripts/fuzz-wire (swiftc -sanitize=fuzzer,address -parse-as-library).
import FlowerWire

@_cdecl("LLVMFuzzerTestOneInput")
public func wireFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    WireFuzzing.exercise(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
