import ArgumentParser
import CNNModel
import FlowerLearning
import FlowerRuntime

/// Which network a command builds: `--model NAME` (the zoo) or `--model-spec FILE` (JSON).
struct ModelOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Network from the zoo: cnn4 (the reference CNN), lenet5 (kubeFlower's), mlp, resnet8.", valueName: "name")) var model: String = "cnn4"
    @Option(help: ArgumentHelp("Hidden layer sizes of --model mlp, comma-separated.", valueName: "sizes")) var hidden: String = "256,128"
    @Option(help: ArgumentHelp("A network as a JSON list of layers (README, \"Models\"); replaces --model.", valueName: "file")) var modelSpec: String?

    func validate() throws {
        guard Zoo.names.contains(model) else {
            throw ValidationError("--model \(model) is not in the zoo; choose one of \(Zoo.names.joined(separator: ", ")) or pass --model-spec FILE")
        }
        try validating { _ = try parseHiddenSizes(hidden) }
    }

    /// The selection (reads and parses --model-spec).
    func selection() throws -> ModelSelection {
        if let modelSpec { return try ModelSelection(specFile: modelSpec) }
        return try ModelSelection(zoo: model, hidden: try parseHiddenSizes(hidden))
    }
}
