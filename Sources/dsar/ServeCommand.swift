import ArgumentParser
import DSARCore
import DSARServer
import Foundation

extension Dsar {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Serve the HTTP API (POST /dsar, GET /dsar/{jobId}, …) over the spool until SIGTERM.",
            discussion: """
                Requests posted are validated like inbox drops and written into inbox/; `dsar run` or \
                `dsar watch` processes them as usual (serve never takes the spool lock, never runs jobs). \
                Settings: `serve:` in config.yaml (auth is required: `auth: none` or `auth: jwt`). Prints \
                `listening on http://HOST:PORT` once bound. Plain HTTP: keep it on loopback behind nginx or \
                Caddy for TLS.
                """)

        @OptionGroup var options: SpoolOptions

        @Option(
            help: ArgumentHelp(
                "HOST:PORT to listen on (default: serve.listen, else 127.0.0.1:8080; port 0 picks a free one).",
                valueName: "host:port"))
        var listen: String?

        @Flag(help: "Allow a non-loopback listen address (only behind a TLS proxy or on a trusted network).")
        var allowRemote = false

        @Flag(
            name: .customLong("print-openapi"),
            help: "Print the OpenAPI 3.1 description of the HTTP API (YAML) and exit; needs no spool.")
        var printOpenAPI = false

        func run() async throws {
            if printOpenAPI {
                FileHandle.standardOutput.write(Data(OpenAPI.yaml))
                return
            }
            try await Exit.guarding {
                let logger = LogSetup.logger(options, label: "dsar.serve")
                let runtime = try ServeRuntime.prepare(
                    layout: options.layout, listen: listen, allowRemote: allowRemote)
                try await runtime.run(logger: logger) { url in
                    // Unbuffered: a supervisor or test waits for this line on a pipe.
                    FileHandle.standardOutput.write(Data("listening on \(url)\n".utf8))
                }
            }
        }
    }
}
