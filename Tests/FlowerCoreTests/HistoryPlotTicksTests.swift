import Testing
@testable import FlowerCore

/// The plot's y axes use round tick values, as plotting libraries choose them.
struct HistoryPlotTicksTests {
    @Test(arguments: [
        (0.0, 1.0, [0, 0.25, 0.5, 0.75, 1.0]),
        (0.0, 1.252, [0, 0.5, 1.0, 1.5]),          // the loss axis that used to read 0.313, 0.626, 0.939
        (0.0, 2.3, [0, 1, 2, 3]),
        (0.42, 0.91, [0.4, 0.6, 0.8, 1.0]),
        (0.0, 37.0, [0, 10, 20, 30, 40]),
    ])
    func ticks(lo: Double, hi: Double, expected: [Double]) {
        #expect(HistoryPlot.niceTicks(lo, hi) == expected)
    }

    @Test func labelsPrintTheTicksExactly() {
        let history = History(rounds: [RoundRecord(round: 1, loss: 1.252, accuracy: 0.5, fitClients: 1, failures: 0, seconds: 1),
                                       RoundRecord(round: 2, loss: 0.4, accuracy: 0.8, fitClients: 1, failures: 0, seconds: 1)])
        let svg = HistoryPlot().svg(history)
        for label in [">0.25<", ">0.75<", ">1.00<", ">0.0<", ">0.5<", ">1.0<", ">1.5<"] {
            #expect(svg.contains(label), "missing y label \(label)")
        }
        #expect(!svg.contains(">0.313<"))
    }
}
