// `flwr export --format onnx`: a trained model (.npz from --model-out, a checkpoint, or PyTorch's
// state_dict saved with numpy) as an ONNX file onnxruntime and other ONNX tools can run.
import ArgumentParser
import CNNModel
import FlowerRuntime

/// `flwr export`.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a trained model (zoo or --model-spec, weights from an .npz) as an ONNX file.",
        discussion: """
            The ONNX graph (opset 17) has one input `input`, float32 N×C×H×W (N×F for a vector \
            input such as tabular features), and one output `logits`, float32 N×classes; N is \
            free. Feed it what the network saw in training: image pixels in [0, 1] mapped to \
            2x − 1, tabular features standardised as `--dataset csv` does. Initialisers keep the \
            PyTorch parameter names.
            """
    )

    @Option(help: ArgumentHelp("Output format (only onnx).", valueName: "format")) var format: String = "onnx"
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: ArgumentHelp("Per-example input shape: CxHxW for images (e.g. 1x28x28, 3x32x32) or F for features (e.g. 30).", valueName: "shape")) var input: String = "1x28x28"
    @Option(help: "Number of classes (logits) of the model.") var classes: Int = 10
    @Option(help: ArgumentHelp("The trained weights (.npz, one float array per parameter, named as the model's parameters).", valueName: "file")) var weights: String
    @Option(help: ArgumentHelp("Where to write the ONNX model.", valueName: "file")) var out: String

    func validate() throws { _ = try shape() }

    func run() throws {
        print(try ModelExport(model: try modelOptions.selection(), input: try shape(), classes: classes, weights: weights, out: out).run())
    }

    /// The parsed --input, with --format and --classes checked.
    func shape() throws -> TensorShape { try validating { try ModelExport.inputShape(format: format, input: input, classes: classes) } }
}
