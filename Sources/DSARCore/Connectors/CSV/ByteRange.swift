/// A half-open byte range [start, end) in a file.
public struct ByteRange: Sendable, Equatable, Hashable {
    /// Offset of the first byte.
    public var start: Int64
    /// Offset just past the last byte.
    public var end: Int64

    /// Makes a range; `end` must not be below `start`.
    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }
}
