import DSARCore
import Foundation
import Hummingbird
import NIOCore

/// An RFC 9457 problem document (`application/problem+json`): what every error response is.
///
/// `{"type", "title", "status", "detail", "instance"?, "errors"?: [{"field", "message"}]}`; `detail`
/// and `errors` carry the same field-precise sentences as `rejected/*.reason` for inbox drops.
package struct Problem: Error, Sendable, HTTPResponseError {
    /// One field-level problem.
    package struct FieldError: Sendable, Equatable {
        /// The field (`action`, `subject.email`, a header name).
        package var field: String
        /// The sentence about it.
        package var message: String
        /// A field-level problem.
        package init(field: String, message: String) {
            self.field = field
            self.message = message
        }
    }

    /// A URI naming the kind of problem (`urn:dsar:problem:<slug>`).
    package var type: String
    /// A short, fixed summary of the kind.
    package var title: String
    /// The HTTP status.
    package var status: HTTPResponse.Status
    /// What is wrong with this request, for a person.
    package var detail: String
    /// The request path.
    package var instance: String?
    /// Field-level problems.
    package var errors: [FieldError] = []
    /// Extra response headers (`Retry-After`, `Allow`, `WWW-Authenticate`).
    package var headers: HTTPFields = [:]

    /// A problem of kind `urn:dsar:problem:<slug>`.
    package init(
        _ status: HTTPResponse.Status, _ slug: String, title: String, detail: String, instance: String? = nil,
        errors: [FieldError] = [], headers: HTTPFields = [:]
    ) {
        self.type = "urn:dsar:problem:\(slug)"
        self.title = title
        self.status = status
        self.detail = detail
        self.instance = instance
        self.errors = errors
        self.headers = headers
    }

    /// The document's bytes.
    package var json: [UInt8] {
        var members: [JSONMember] = [
            member("type", .string(type)), member("title", .string(title)),
            member("status", .number(String(status.code))),
            member("detail", .string(detail)),
        ]
        if let instance { members.append(member("instance", .string(instance))) }
        if !errors.isEmpty {
            members.append(
                member(
                    "errors",
                    .array(
                        errors.map {
                            .object([member("field", .string($0.field)), member("message", .string($0.message))])
                        })))
        }
        return JSONWriter(indent: 2).encode(.object(members)) + [0x0A]
    }

    /// HTTPResponseError: the response Hummingbird sends for this error.
    package func response(from request: Request, context: some RequestContext) throws -> Response {
        var h = headers
        h[.contentType] = "application/problem+json"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: json)))
    }

    // MARK: the problems dsar serve answers with

    /// 400: the body is not a valid request (the parser's sentence, and the field it names).
    package static func invalidRequest(_ message: String, instance: String?) -> Problem {
        Problem(
            .badRequest, "invalid-request", title: "The request is not valid", detail: message, instance: instance,
            errors: [FieldError(field: fieldName(in: message) ?? "", message: message)])
    }

    /// 404: no such job or route.
    package static func notFound(_ detail: String, instance: String?) -> Problem {
        Problem(.notFound, "not-found", title: "Not found", detail: detail, instance: instance)
    }

    /// 500: an unexpected failure; the detail names no personal data (it is a DSARError message).
    package static func internalError(_ detail: String, instance: String?) -> Problem {
        Problem(
            .internalServerError, "internal", title: "The server could not do this", detail: detail, instance: instance)
    }

    /// The field a parser message is about: `field "action"`, `identifier "subject.email"`,
    /// `identifier type "subject.x"`, `unknown field "x"` (nil when it names none).
    package static func fieldName(in message: String) -> String? {
        for marker in ["field \"", "identifier type \"", "identifier \""] {
            if let r = message.range(of: marker) {
                let rest = message[r.upperBound...]
                if let end = rest.firstIndex(of: "\"") { return String(rest[..<end]) }
            }
        }
        return nil
    }
}

/// Turns every error a route or Hummingbird throws into a problem document, so no client ever sees
/// a bare status: routing's 404, body-size 413, DSARError (mapped by code) and anything else (500).
package struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The middleware.
    package init() {}

    /// Runs the rest of the chain and turns what it throws into a problem.
    package func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let instance = request.uri.path
        do {
            return try await next(request, context)
        } catch let p as Problem {
            throw p
        } catch let e as HTTPError where e.status == .notFound {
            if let allowed = Routes.allowedMethods(instance) {
                let list = allowed.map(\.rawValue).joined(separator: ", ")
                throw Problem(
                    .methodNotAllowed, "method-not-allowed", title: "Method not allowed",
                    detail: "\(request.method.rawValue) is not allowed on \(instance); allowed: \(list)",
                    instance: instance, headers: [.allow: list])
            }
            throw ProblemMiddleware.problem(for: e, instance: instance)
        } catch let e as HTTPError {
            throw ProblemMiddleware.problem(for: e, instance: instance)
        } catch let e as DSARError where e.code == .notFound {
            throw Problem.notFound(e.message, instance: instance)
        } catch let e as DSARError {
            // The message names spool paths: for the operator's log, not for the client.
            context.logger.error("request failed", metadata: ["error": "\(e.message)", "path": "\(instance)"])
            throw Problem.internalError(
                "the server could not read or write the spool (\(e.code.rawValue)); the operator finds the cause in its log",
                instance: instance)
        } catch is CancellationError {
            throw Problem(
                .serviceUnavailable, "shutting-down", title: "The server is shutting down",
                detail: "the server is shutting down; retry the request", instance: instance)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(instance)"])
            throw Problem.internalError("unexpected error: \(type(of: error))", instance: instance)
        }
    }

    static func problem(for e: HTTPError, instance: String) -> Problem {
        switch e.status {
        case .notFound:
            return Problem.notFound("no route \(instance); see the HTTP API in the README", instance: instance)
        case .contentTooLarge:
            return Problem(
                .contentTooLarge, "too-large", title: "The request body is too large",
                detail: e.body ?? "the request body is larger than this spool accepts (max_request_bytes)",
                instance: instance)
        default:
            return Problem(
                e.status, "http", title: e.status.reasonPhrase, detail: e.body ?? e.status.reasonPhrase,
                instance: instance, headers: e.headers)
        }
    }
}
