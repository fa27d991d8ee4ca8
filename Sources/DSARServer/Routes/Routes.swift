import DSARCore
import Hummingbird
import NIOCore

/// The routes of `dsar serve`. Every route but `/healthz` asks the ``Authorizer`` first, with its
/// scope; all file work runs on ``BlockingIO``; every error is a ``Problem``.
struct Routes: Sendable {
    let spool: SpoolAccess
    let auth: any Authorizer

    /// Every path with the methods it answers (a known path with another method gets 405).
    static let methods: [(path: String, methods: [HTTPRequest.Method])] = [
        ("/dsar", [.post]), ("/dsar/:jobId", [.get]), ("/dsar/:jobId/events", [.get]),
        ("/dsar/:jobId/download", [.get]), ("/healthz", [.get]), ("/metrics", [.get]),
        ("/files/:token", [.get]),
    ]

    /// The methods a known path answers, or nil for a path no route has (`:name` matches one segment).
    /// The router answers 404 for a method it has never heard of (TRACE, QUERY, …); on a known path
    /// ``ProblemMiddleware`` turns that into 405 with `Allow`.
    static func allowedMethods(_ path: String) -> [HTTPRequest.Method]? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return methods.first { route in
            let pattern = route.path.split(separator: "/", omittingEmptySubsequences: false)
            return pattern.count == parts.count
                && zip(pattern, parts).allSatisfy { p, c in p.hasPrefix(":") ? !c.isEmpty : p == c }
        }?.methods
    }

    func register(on router: Router<ServerContext>) {
        router.post("/dsar") { request, context in try await self.submit(request, context) }
        router.get("/dsar/:jobId") { request, context in try await self.status(request, context) }
        router.get("/dsar/:jobId/events") { request, context in try await self.events(request, context) }
        router.get("/dsar/:jobId/download") { request, context in try await self.download(request, context) }
        router.get("/files/:token") { request, context in try await self.file(request, context) }
        router.get("/healthz") { request, context in try await self.health(request, context) }
        router.get("/metrics") { request, context in try await self.metrics(request, context) }
        let all: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .head, .options]
        for (path, allowed) in Routes.methods {
            for m in all where !allowed.contains(m) && !(m == .head && allowed.contains(.get)) {
                router.on(RouterPath(path), method: m) { request, _ -> Response in
                    throw Problem(
                        .methodNotAllowed, "method-not-allowed", title: "Method not allowed",
                        detail:
                            "\(request.method.rawValue) is not allowed on \(request.uri.path); allowed: \(allowed.map(\.rawValue).joined(separator: ", "))",
                        instance: request.uri.path, headers: [.allow: allowed.map(\.rawValue).joined(separator: ", ")])
                }
            }
        }
    }

    // MARK: POST /dsar

    func submit(_ request: Request, _ context: ServerContext) async throws -> Response {
        var request = request
        let instance = request.uri.path
        var principal = try await auth.authorize(request, scope: .submit)
        let type = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces)
            .lowercased()
        guard type == "application/json" else {
            throw Problem(
                .unsupportedMediaType, "unsupported-media-type", title: "The body must be JSON",
                detail:
                    "Content-Type is \(request.headers[.contentType].map { "\"\($0)\"" } ?? "missing"); send the request as application/json",
                instance: instance)
        }
        let max = spool.config.maxRequestBytes
        let tooLarge = Problem(
            .contentTooLarge, "too-large", title: "The request body is too large",
            detail: "requests may be at most \(max) bytes (max_request_bytes in \(spool.layout.config))",
            instance: instance)
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > max { throw tooLarge }
        // Read while it streams in, never more than max_request_bytes.
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: max) } catch let e as HTTPError
            where e.status == .contentTooLarge
        {
            throw tooLarge
        } catch is NIOTooManyBytesError {
            throw tooLarge
        }
        let body = Array(buffer.readableBytesView)
        principal = try await auth.authorizeBody(body, request: request, principal: principal)
        let key = request.headers.first { $0.name.canonicalName == "idempotency-key" }?.value
        if let key, key.isEmpty || key.utf8.count > 255 {
            throw Problem(
                .badRequest, "invalid-idempotency-key", title: "Invalid Idempotency-Key",
                detail: "the Idempotency-Key header must be 1 to 255 characters", instance: instance,
                errors: [.init(field: "Idempotency-Key", message: "must be 1 to 255 characters")])
        }
        let spool = self.spool
        let signature = principal.bodySignature.map { Array($0.utf8) }
        let outcome = try await BlockingIO.run {
            try spool.submit(body, idempotencyKey: key, instance: instance, signature: signature)
        }
        let (status, jobID, jobStatus): (HTTPResponse.Status, String, String) =
            switch outcome {
            case .created(let id): (.accepted, id, JobStatus.pending.rawValue)
            case .existing(let id, let s): (.ok, id, s)
            }
        context.logger.info(
            status == .accepted ? "request accepted" : "request already received",
            metadata: ["job": "\(jobID)", "client": "\(context.clientAddress)"])
        let base = "/dsar/\(jobID)"
        return jsonResponse(
            status,
            .object([
                member("jobId", .string(jobID)), member("status", .string(jobStatus)),
                member(
                    "links",
                    .object([
                        member("self", .string(base)), member("events", .string(base + "/events")),
                        member("download", .string(base + "/download")),
                    ])),
            ]), headers: [.location: base])
    }

    // MARK: GET /dsar/{jobId}, /events

    func jobID(_ request: Request, _ context: ServerContext) throws -> String {
        let id = context.parameters.get("jobId") ?? ""
        guard UUIDv7.isValid(id) else {
            throw Problem.notFound(
                "\"\(id)\" is not a job id (expected the jobId POST /dsar answered with)", instance: request.uri.path)
        }
        return id
    }

    func status(_ request: Request, _ context: ServerContext) async throws -> Response {
        try await readDocument(request, context) { spool, id in try spool.statusDocument(id) }
    }

    func events(_ request: Request, _ context: ServerContext) async throws -> Response {
        try await readDocument(request, context) { spool, id in try spool.timeline(id) }
    }

    /// A `dsar:read` route answering the job's document that `read` makes off the event loop
    /// (nil: 404, no such job).
    func readDocument(
        _ request: Request, _ context: ServerContext,
        _ read: @escaping @Sendable (SpoolAccess, String) throws -> [UInt8]?
    ) async throws -> Response {
        _ = try await auth.authorize(request, scope: .read)
        let id = try jobID(request, context)
        let spool = self.spool
        guard let doc = try await BlockingIO.run({ try read(spool, id) }) else {
            throw Problem.notFound("no job \(id)", instance: request.uri.path)
        }
        return jsonResponse(.ok, doc)
    }

    // MARK: GET /dsar/{jobId}/download, /files/{token}: DownloadTokens.swift

    // MARK: GET /healthz, /metrics

    func health(_ request: Request, _ context: ServerContext) async throws -> Response {
        let spool = self.spool
        if let problem = try await BlockingIO.run({ spool.healthProblem() }) {
            throw Problem(
                .serviceUnavailable, "unhealthy", title: "The spool is not usable", detail: problem,
                instance: request.uri.path)
        }
        return jsonResponse(.ok, .object([member("status", .string("ok"))]))
    }

    func metrics(_ request: Request, _ context: ServerContext) async throws -> Response {
        _ = try await auth.authorize(request, scope: .read)
        let spool = self.spool
        let text = try await BlockingIO.run { try spool.metrics() }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
