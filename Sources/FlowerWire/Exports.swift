// FlowerWire is the transport half of the wire (server, client, pipelines on NIOPosix); the codec
// half (frames, messages, limits, the NIO frame decoder) is FlowerWireCodec, which builds without
// sockets for the fuzzer. Importing FlowerWire gives both, as before the split.
@_exported import FlowerWireCodec
