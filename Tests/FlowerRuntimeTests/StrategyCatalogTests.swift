// The strategy catalog: every name builds the strategy it names, and bad settings are refused
// with the flag that is wrong.
import FedAvg
import FlowerCore
import Strategies
import Testing
@testable import FlowerRuntime

struct StrategyCatalogTests {
    static let base = makeFedAvg(fractionFit: 1, minFitClients: nil, acceptFailures: true, seed: 1, minClients: 5,
                                 initialParameters: nil, fitConfig: [:], evaluateFn: nil)

    @Test(arguments: [
        ("fedavg", "FedAvg"), ("fedavgm", "FedAvgM"), ("fedprox", "FedProx"), ("fedadam", "FedAdam"),
        ("fedyogi", "FedYogi"), ("fedadagrad", "FedAdagrad"), ("fedmedian", "FedMedian"),
        ("fedtrimmedavg", "FedTrimmedAvg"), ("krum", "Krum"), ("multikrum", "MultiKrum"), ("bulyan", "Bulyan"),
    ])
    func everyNameBuildsItsStrategy(name: String, type: String) throws {
        var settings = StrategySettings(name: name)
        settings.proximalMu = 0.01
        settings.numClientsToKeep = 2
        try settings.validate()
        let strategy = StrategyCatalog.make(settings, base: Self.base)
        #expect(String(describing: Swift.type(of: strategy)) == type)
        #expect(StrategyCatalog.help.contains(name))
    }

    @Test func catalogNamesAreUniqueAndOrderStatisticsAreMarked() {
        #expect(Set(StrategyCatalog.names).count == StrategyCatalog.entries.count)
        let buffering = StrategyCatalog.entries.filter(\.buffers).map(\.name)
        #expect(buffering == ["fedmedian", "fedtrimmedavg", "krum", "multikrum", "bulyan"])
        #expect(StrategyCatalog.help.contains("fedmedian*"))
    }

    struct BadCase: Sendable, CustomStringConvertible {
        let description: String
        let change: @Sendable (inout StrategySettings) -> Void
        let message: String
        init(_ description: String, _ change: @escaping @Sendable (inout StrategySettings) -> Void, _ message: String) {
            self.description = description; self.change = change; self.message = message
        }
    }

    @Test(arguments: [
        BadCase("unknown", { s in s.name = "fedsgd" }, "unknown --strategy fedsgd"),
        BadCase("fedprox without mu", { s in s.name = "fedprox" }, "--strategy fedprox needs --proximal-mu"),
        BadCase("negative mu", { s in s.name = "fedprox"; s.proximalMu = -1 }, "--proximal-mu must be 0 or more"),
        BadCase("multikrum without k", { s in s.name = "multikrum" }, "--num-clients-to-keep"),
        BadCase("eta 0", { s in s.serverLearningRate = 0 }, "--server-learning-rate must be positive"),
        BadCase("beta-1 1", { s in s.beta1 = 1 }, "--beta-1 must be in [0, 1)"),
        BadCase("tau inf", { s in s.tau = .infinity }, "--tau must be positive"),
        BadCase("beta 0.5", { s in s.beta = 0.5 }, "--beta must be in [0, 0.5)"),
        BadCase("f -1", { s in s.numMaliciousClients = -1 }, "--num-malicious-clients must be 0 or more"),
        BadCase("max examples 0", { s in s.maxExamples = 0 }, "--max-examples must be at least 1"),
        BadCase("clip nan", { s in s.clipNorm = .nan }, "--clip-norm must be positive"),
    ])
    func badSettingsNameTheFlag(_ c: BadCase) {
        var settings = StrategySettings()
        c.change(&settings)
        #expect(throws: StrategyError.self) { try settings.validate() }
        do { try settings.validate() } catch { #expect("\(error)".contains(c.message), "\(c): \(error)") }
    }

    @Test func fedOptFlagsOverrideDefaultsAndMomentumStandsForBeta1() {
        var settings = StrategySettings(name: "fedadam")
        settings.serverMomentum = 0.5
        let s = settings.fedOpt(FedAdam.defaults)
        #expect(s.beta1 == 0.5 && s.eta == FedAdam.defaults.eta && s.beta2 == FedAdam.defaults.beta2)
        settings.beta1 = 0.8
        #expect(settings.fedOpt(FedAdam.defaults).beta1 == 0.8)
    }

    @Test func answerChecksReachServerOptions() {
        var settings = StrategySettings()
        settings.maxExamples = 77
        settings.clipNorm = 2.5
        let o = settings.apply(to: ServerOptions())
        #expect(o.maxExamples == 77 && o.clipNorm == 2.5)
    }
}
