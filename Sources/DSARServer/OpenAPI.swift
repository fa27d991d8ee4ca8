/// The OpenAPI 3.1 description of `dsar serve` (`Resources/openapi.yaml`, embedded in the binary):
/// every route, its scopes, request and response schemas, and the problem documents of every error.
package enum OpenAPI {
    /// The document's bytes, as `dsar serve --print-openapi` prints them.
    package static var yaml: [UInt8] { PackageResources.openapi_yaml }
}
