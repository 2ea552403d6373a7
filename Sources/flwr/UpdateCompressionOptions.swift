import ArgumentParser
import FlowerWire

/// `--update-compression`: how clients encode the updates they send (server and simulate).
struct UpdateCompressionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("How clients encode their fit updates (trained weights minus the weights they were sent): none (float32 weights), fp16 (IEEE half, round-to-nearest: half the upload), int8 (per-tensor scale max|x|/127, stochastic rounding so the mean update is unbiased: a quarter of the upload), int4 (two values per byte in [-7, 7], one scale max|x|/7 per tensor, stochastic rounding: an eighth of the upload) or topk:F (0 < F <= 1: the largest fraction F of each tensor's update coordinates as u32 indices and float32 values, 8 bytes each; with error feedback: each client keeps what it did not send and adds it to its next update, for as long as its process runs). Top-k options, comma-separated after F: noef (error feedback off), global (the same total number of coordinates chosen over the whole update instead of per tensor), warmup=R (rounds 1..R send the larger fraction F^(r/(R+1)), as Deep Gradient Compression's warm-up; counted in the bytes), varint (indices as LEB128 gaps, about 1 byte instead of 4 at F = 0.01), int8 (indices as varint, and each kept value as one byte: an int8 step of a per-tensor scale, the tensor's largest kept |value|/127, stochastically rounded so it is unbiased; with error feedback the rounding error stays in the residual; about 2 bytes a coordinate instead of 5, which leaves room for a longer warm-up in the same bytes), e.g. topk:0.01,global,warmup=4,int8 (on the README's task: 1.5 to 1.8 points below float32 at 2.3% of its upload). The server announces it when a client joins and adds each decoded update onto the weights it sent before the strategy sees it. Not with --secagg (secure aggregation quantises the update itself).", valueName: "none|fp16|int8|int4|topk:F[,noef][,global][,warmup=R][,varint][,int8]")) var updateCompression: UpdateCompression = .none
    @Option(help: ArgumentHelp("How the server sends the model in every fit and evaluate instruction: none (float32) or fp16 (IEEE half, round-to-nearest: half the download; a weight beyond ±65504 makes each instruction fail, naming the tensor). Clients decode it to float32 and train from the rounded weights; the server keeps its float32 model and, under --update-compression, adds each client's update onto it.", valueName: "none|fp16")) var broadcastCompression: BroadcastCompression = .none
    @Flag(inversion: .prefixedNo, help: "Negotiate zlib on the wire: a frame is deflated when a sample of it shows it pays (float32 weights rarely do, int8/int4/top-k updates do). --no-zlib sends every frame as it is, e.g. to measure what zlib saves on top of --update-compression.") var zlib = true
}

extension UpdateCompression: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument) }
}

extension BroadcastCompression: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}
