import ArgumentParser

/// `flwr client --slowdown F`: emulates a site F times slower than this machine.
struct SiteSpeedOptions: ParsableArguments {
    @Option(help: "Emulate a site this many times slower at training (≥ 1): every fit runs as usual, then its answer is held back (F − 1) × the fit's measured duration, so the server hears from this client F × later, as from a slower device (the wait sleeps: it uses no core). Evaluation is not slowed. For measuring stragglers with real processes on one machine, e.g. flwr server --mode async against synchronous rounds.") var slowdown: Double = 1
}
