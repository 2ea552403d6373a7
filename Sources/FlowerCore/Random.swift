// The seeded generator of every random choice the federation makes (FlowerBase's).
import FlowerBase

/// SplitMix64 (Steele, Lea & Flood 2014): client sampling, reconnect jitter. Same seed, same sequence.
public typealias SplitMix64 = FlowerBase.SplitMix64
