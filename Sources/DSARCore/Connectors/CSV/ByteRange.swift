/// A half-open byte range [start, end) in a file.
package struct ByteRange: Sendable, Equatable, Hashable {
    /// Offset of the first byte.
    package var start: Int64
    /// Offset just past the last byte.
    package var end: Int64

    /// Makes a range; `end` must not be below `start`.
    package init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }
}
