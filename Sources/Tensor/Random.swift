// Random: the seeded generator every random choice in Tensor/CNNModel takes (FlowerBase's).
import FlowerBase

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fully determined by its seed.
public typealias SplitMix64 = FlowerBase.SplitMix64
