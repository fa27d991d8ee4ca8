import DSARCore
import Hummingbird
import NIOCore

/// One member of a JSON object to write.
func member(_ key: String, _ value: JSONValue) -> JSONMember { JSONMember(key: key, value: value) }

/// A JSON response (`application/json`) with these bytes.
func jsonResponse(_ status: HTTPResponse.Status, _ bytes: [UInt8], headers: HTTPFields = [:]) -> Response {
    var h = headers
    h[.contentType] = "application/json"
    return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}

/// A JSON response for a value.
func jsonResponse(_ status: HTTPResponse.Status, _ value: JSONValue, headers: HTTPFields = [:]) -> Response {
    jsonResponse(status, JSONWriter(indent: 2).encode(value) + [0x0A], headers: headers)
}
