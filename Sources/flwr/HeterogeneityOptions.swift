import ArgumentParser
import FlowerCore
import FlowerRuntime

/// `flwr simulate`'s virtual clock: heterogeneous clients whose result arrivals are computed, not slept.
struct HeterogeneityOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Virtual clock: each client's compute time is multiplied by a fixed factor exp(σ·Z), Z standard normal, drawn from --seed and the client's identity (median 1; σ = 1 gives a 10th-to-90th percentile spread of about 13×). A client's compute time is its training examples × local epochs × --seconds-per-example × its factor: a deterministic model, not a measurement, so runs are reproducible and the order in which results arrive is known when clients start. Virtual clients only.", valueName: "lognormal:σ")) var clientSpeed: LogNormal?
    @Option(help: ArgumentHelp("Virtual clock: each client's link rate in Mbit/s, exp(μ + σ·Z) drawn once per client; the model (4 bytes per value) takes bytes / rate to go down and the update as long to come back. Default: transfers take no time.", valueName: "lognormal:μ,σ")) var linkMbps: LogNormal?
    @Option(help: "Virtual clock: probability that a client is online in a round (sync) or for a server version (async), drawn per client and round from --seed; offline clients are not sampled (--clients-per-round still samples that many among those online). Default 1: always online.") var clientAvailability: Double = 1
    @Option(help: "Virtual clock: seconds one training example takes for one local epoch on a client of speed factor 1.") var secondsPerExample: Double = 0.001
    @OptionGroup var fedBuff: FedBuffOptions
}

extension LogNormal: ExpressibleByArgument {}
