import DSARCore
import Foundation
import Hummingbird
import NIOCore

/// The download routes (issue 17): `GET /dsar/{jobId}/download` answers `302` to
/// `/files/{token}`, a link signed under a spool key (``DownloadTokenSigner``) over the job, the
/// file and the expiry, now + `serve.download_ttl`. `GET /files/{token}` needs no other
/// credentials: it checks the token (403 when expired or altered, 410 when the entry it was made
/// for is gone) and streams the file in chunks read on ``BlockingIO``, with `Content-Length`,
/// `ETag`, `Accept-Ranges`, single `Range` requests (206, 416) and `If-None-Match` (304).
extension Routes {
    /// The bytes read per chunk while a file streams.
    static let downloadChunk = 256 << 10

    /// `GET /dsar/{jobId}/download[?file=NAME]`: a `302` to a fresh signed link.
    func download(_ request: Request, _ context: ServerContext) async throws -> Response {
        let principal = try await auth.authorize(request, scope: .download)
        let id = try jobID(request, context)
        let instance = request.uri.path
        let name = request.uri.queryParameters["file"].map { String($0) } ?? DownloadFile.bundle.fileName
        guard let file = DownloadFile(fileName: name) else {
            let expected = DownloadFile.allCases.map { "\"\($0.fileName)\"" }.joined(separator: ", ")
            let message = "query parameter \"file\" is \"\(name)\"; expected one of \(expected)"
            throw Problem(
                .badRequest, "invalid-query", title: "Invalid query parameter", detail: message, instance: instance,
                errors: [.init(field: "file", message: message)])
        }
        let spool = self.spool
        let ttl = spool.config.serve.downloadTTL
        let now = DSARClock.now()
        let link = try await BlockingIO.run {
            try spool.downloadLink(
                id, file: file, ttl: ttl, now: now, principal: principal.name, instance: instance)
        }
        let href = "/files/" + link.token
        context.logger.info(
            "download link made",
            metadata: ["job": "\(id)", "file": "\(file.fileName)", "client": "\(context.clientAddress)"])
        return jsonResponse(
            .found,
            .object([
                member("jobId", .string(id)), member("file", .string(file.fileName)), member("href", .string(href)),
                member("expiresAt", .string(Timestamp.format(link.expires))),
            ]), headers: [.location: href, .cacheControl: "no-store"])
    }

    /// `GET /files/{token}`: the file, whole or one range of it.
    func file(_ request: Request, _ context: ServerContext) async throws -> Response {
        // The token is a credential: never echoed in problems or logs.
        let instance = "/files/{token}"
        let text = context.parameters.get("token") ?? ""
        let token: DownloadToken
        switch spool.downloadSigner.decode(text, now: DSARClock.now()) {
        case .success(let t): token = t
        case .failure(.expired(let at)):
            throw Problem.forbidden(
                "this download link expired at \(Timestamp.format(at)); ask GET /dsar/{jobId}/download for a new one"
            ).at(instance)
        case .failure:
            throw Problem.forbidden(
                "this download link is not valid (altered, truncated, or not made by this server); ask GET /dsar/{jobId}/download for a new one"
            ).at(instance)
        }
        let spool = self.spool
        let opened: OutboxDownload.OpenFile
        do {
            opened = try await BlockingIO.run { try spool.openDownload(token, instance: instance) }
        } catch let e as DSARError {
            // As ProblemMiddleware does, but without the request path (it holds the token).
            context.logger.error(
                "download failed", metadata: ["error": "\(e.message)", "job": "\(token.jobID)", "path": "\(instance)"])
            throw Problem.internalError(
                "the server could not read the outbox entry (\(e.code.rawValue)); the operator finds the cause in its log",
                instance: instance)
        }
        let size = opened.size
        var headers: HTTPFields = [
            .contentType: token.file.contentType, .acceptRanges: "bytes", .cacheControl: "private",
            .contentDisposition: "attachment; filename=\"\(token.jobID)-\(token.file.fileName)\"",
        ]
        if let etag = opened.etag { headers[.eTag] = etag }
        if OutboxDownload.ifNoneMatch(request.headers[.ifNoneMatch], matches: opened.etag) {
            return Response(status: .notModified, headers: headers, body: .init())
        }
        var range = HTTPByteRange.parse(request.headers[.range], size: size)
        // If-Range with another (or no) tag: the file changed, send it whole.
        if let ifRange = request.headers[.ifRange], ifRange != opened.etag || ifRange.hasPrefix("W/") {
            range = .whole
        }
        var status = HTTPResponse.Status.ok
        var (lower, upper) = (Int64(0), size - 1)
        switch range {
        case .whole: break
        case .bytes(let a, let b):
            (status, lower, upper) = (.partialContent, a, b)
            headers[.contentRange] = "bytes \(a)-\(b)/\(size)"
        case .unsatisfiable:
            throw Problem(
                .rangeNotSatisfiable, "range-not-satisfiable", title: "Range not satisfiable",
                detail:
                    "Range \"\(request.headers[.range] ?? "")\" asks for no byte of this file, which is \(size) bytes long",
                instance: instance, errors: [.init(field: "Range", message: "the file is \(size) bytes long")],
                headers: [.contentRange: "bytes */\(size)", .acceptRanges: "bytes"])
        }
        let length = upper - lower + 1
        headers[.contentLength] = String(length)
        context.logger.info(
            "download",
            metadata: [
                "job": "\(token.jobID)", "file": "\(token.file.fileName)", "offset": "\(lower)", "bytes": "\(length)",
                "client": "\(context.clientAddress)",
            ])
        let chunk = Routes.downloadChunk
        let (start, end) = (lower, upper + 1)
        let body = ResponseBody(contentLength: Int(length)) { writer in
            var offset = start
            while offset < end {
                let want = Int(min(Int64(chunk), end - offset))
                let at = offset
                let buffer = try await BlockingIO.run { () throws -> ByteBuffer in
                    var b = ByteBufferAllocator().buffer(capacity: want)
                    let n = try b.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { p in
                        try opened.read(at: at, into: UnsafeMutableRawBufferPointer(rebasing: p[0..<want]))
                    }
                    guard n > 0 else {
                        throw DSARError(.io, "a download file became shorter while it was sent (\(at) of \(end) bytes)")
                    }
                    return b
                }
                offset += Int64(buffer.readableBytes)
                try await writer.write(buffer)
            }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: headers, body: body)
    }
}

extension Problem {
    /// This problem, about `instance`.
    func at(_ instance: String) -> Problem {
        var p = self
        p.instance = instance
        return p
    }
}
