import ArgumentParser
import DSARCore
import Foundation

/// Documented exit codes (see `dsar --help`).
enum Exit {
    static let jobsFailed = ExitCode(1)
    static let rejected = ExitCode(2)
    static let dataError = ExitCode(65)
    static let notFound = ExitCode(66)
    static let ioError = ExitCode(74)
    static let locked = ExitCode(75)
    static let permissions = ExitCode(77)
    static let config = ExitCode(78)

    /// Runs a command body, printing library errors as `dsar: message` and mapping them to exit codes.
    static func guarding<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let e as DSARError {
            printError(e.message)
            throw code(for: e)
        } catch let e as ConfigProblems {
            printError("configuration errors:\n" + e.description)
            throw config
        }
    }

    static func code(for e: DSARError) -> ExitCode {
        switch e.code {
        case .usage: .validationFailure
        case .config: config
        case .io: ioError
        case .locked: locked
        case .invalidInput: dataError
        case .notFound: notFound
        case .permissions: permissions
        case .processing, .verification: jobsFailed
        }
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data("dsar: \(message)\n".utf8))
    }
}
