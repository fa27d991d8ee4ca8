/// SplitMix64: a seeded generator, so generated test data is the same on every run.
package struct SplitMix64: RandomNumberGenerator {
    package var state: UInt64

    /// A generator starting from `state`.
    package init(state: UInt64) { self.state = state }

    /// The next 64 random bits.
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<n`.
    package mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    /// One element of `a`.
    package mutating func pick<T>(_ a: [T]) -> T { a[int(a.count)] }
    /// True with probability `p`.
    package mutating func chance(_ p: Double) -> Bool { Double(next() % 1_000_000) / 1_000_000 < p }
}
