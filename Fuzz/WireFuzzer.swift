// libFuzzer target: the NIO FrameToMessageDecoder in an EmbeddedChannel, fed each input in chunks
// and whole (the two runs checked against each other), PayloadLimits, TensorScanner, the budgeted
// libprotobuf-c unpack and both envelopes' mapping (WireFuzzing.run, Fuzz/WireFuzzEntry).
// Built and run by scripts/fuzz-wire (swiftc -sanitize=fuzzer,address -parse-as-library).
import WireFuzzEntry

@_cdecl("LLVMFuzzerTestOneInput")
public func wireFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let outcome = WireFuzzing.run(UnsafeRawBufferPointer(start: data, count: size))
    if let mismatch = outcome.mismatch {
        fatalError("chunked and whole input decode differently: \(mismatch)")  // the fuzzer's finding, written as a crash input
    }
    return 0
}
