// `flwr simulate --sampling`: uniform by default, Poisson by default under DP-FedAvg, and
// uniform refused beside DP-FedAvg, whose ε assumes Poisson sampling.
import ArgumentParser
import FlowerRuntime
import Testing
@testable import flwr

@Suite struct SamplingFlagTests {
    @Test func samplingDefaultsAndTheDPRefusal() throws {
        #expect(try SimulateCommand.parse([]).config().sampling == .uniform)
        let poisson = try SimulateCommand.parse(["--clients", "1000", "--clients-per-round", "50", "--sampling", "poisson"]).config()
        #expect(poisson.sampling == .poisson)
        #expect(poisson.poissonRate == 0.05)
        #expect(try SimulateCommand.parse(["--fraction-fit", "0.2", "--sampling", "poisson"]).config().poissonRate == 0.2)
        let dp = ["--clients", "1000", "--clients-per-round", "100", "--dp-noise-multiplier", "1", "--dp-clip", "1"]
        #expect(try SimulateCommand.parse(dp).config().sampling == .poisson)
        #expect(try SimulateCommand.parse(dp + ["--sampling", "poisson"]).config().sampling == .poisson)
        do {
            _ = try SimulateCommand.parse(dp + ["--sampling", "uniform"])
            Issue.record("--sampling uniform with DP-FedAvg was accepted")
        } catch {
            #expect(SimulateCommand.message(for: error).contains("accounted for Poisson sampling"))
        }
        #expect(throws: (any Error).self) { try SimulateCommand.parse(["--sampling", "stratified"]) }
    }
}
