// Values exchanged with the training loop: optimiser settings, progress and results.

/// SGD settings, as torch.optim.SGD(lr, momentum, weight_decay) (dampening 0, no Nesterov).
public struct SGDConfig: Sendable, Equatable {
    /// Step size.
    public var learningRate: Float
    /// Momentum factor (0 disables the velocity buffer).
    public var momentum: Float
    /// L2 penalty added to the gradient (weightDecay * w).
    public var weightDecay: Float
    /// FedProx's μ: adds μ·(w − w₀) to the gradient, w₀ the parameters at the start of `train`
    /// (the global model of the round); 0 disables it.
    public var proximalMu: Float
    /// Settings with PyTorch-style defaults for this project (lr 0.01, momentum 0.9, no decay).
    public init(learningRate: Float = 0.01, momentum: Float = 0.9, weightDecay: Float = 0, proximalMu: Float = 0) {
        self.learningRate = learningRate; self.momentum = momentum; self.weightDecay = weightDecay
        self.proximalMu = proximalMu
    }
}

/// Reported after every training step.
public struct TrainProgress: Sendable, Equatable {
    /// Epoch index, from 0.
    public var epoch: Int
    /// Step within the epoch, from 0.
    public var step: Int
    /// Steps in one epoch (the last partial batch counts).
    public var stepsPerEpoch: Int
    /// Examples processed so far in this call, over all epochs.
    public var examplesSeen: Int
    /// Mean loss of this step's batch.
    public var loss: Double
}

/// Outcome of `CNN.train`.
public struct TrainResult: Sendable, Equatable {
    /// Mean training loss over every example processed (all epochs).
    public var meanLoss: Double
    /// Total examples processed over all epochs.
    public var examples: Int
}

/// Outcome of `CNN.evaluate`.
public struct EvalResult: Sendable, Equatable {
    /// Mean cross-entropy loss.
    public var loss: Double
    /// Fraction of examples whose arg-max logit is the label.
    public var accuracy: Double
    /// Examples evaluated.
    public var examples: Int
}
