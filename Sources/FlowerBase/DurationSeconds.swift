extension Duration {
    /// The duration in seconds as a Double (attosecond precision folded in).
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}
