import CZlib

/// One-shot zlib (RFC 1950) decompression, for test vectors and small blobs.
package enum Zlib {
    /// Inflates a complete zlib stream; throws if it is malformed, truncated, followed by trailing
    /// bytes, or would exceed `limit` bytes.
    package static func inflate(_ input: [UInt8], limit: Int = 1 << 30) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit_(&stream, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DSARError(.processing, "zlib: cannot initialise inflate")
        }
        defer { inflateEnd(&stream) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        var input = input
        let total = input.count
        var status: Int32 = Z_OK
        try input.withUnsafeMutableBufferPointer { inBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = UInt32(total)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = UInt32(outBuf.count)
                    status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    return outBuf.count - Int(stream.avail_out)
                }
                out.append(contentsOf: chunk[0..<produced])
                if out.count > limit { throw DSARError(.processing, "zlib: output larger than \(limit) bytes") }
                if status == Z_BUF_ERROR && stream.avail_in == 0 {
                    throw DSARError(.processing, "zlib: truncated stream")
                }
                if status != Z_OK && status != Z_STREAM_END {
                    throw DSARError(.processing, "zlib: malformed stream (code \(status))")
                }
                if status == Z_OK && produced == 0 && stream.avail_in == 0 {
                    throw DSARError(.processing, "zlib: truncated stream")
                }
            } while status != Z_STREAM_END
        }
        if stream.avail_in != 0 { throw DSARError(.processing, "zlib: trailing data after the stream") }
        return out
    }
}
