import ArgumentParser
import DSARCore
import Foundation
import Logging

/// How log lines are written to stderr.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case auto, text, json
}

/// Bootstraps swift-log once per process (the library never does).
enum LogSetup {
    nonisolated(unsafe) private static var done = false

    static func logger(_ opts: SpoolOptions, label: String = "dsar") -> Logger {
        if !done {
            done = true
            let json = opts.logFormat == .json || (opts.logFormat == .auto && isatty(2) == 0)
            LoggingSystem.bootstrap { label in
                json ? JSONLogHandler(label: label) as LogHandler : TextLogHandler(label: label) as LogHandler
            }
        }
        var l = Logger(label: label)
        l.logLevel = Logger.Level(rawValue: opts.logLevel) ?? .info
        return l
    }
}

/// `2026-11-29T02:00:00Z notice  watching inbox=/srv/dsar/spool/inbox`
struct TextLogHandler: LogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let meta = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line =
            "\(Timestamp.format(Date())) \(event.level.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)) \(event.message)\(meta.isEmpty ? "" : " " + meta)\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

/// One JSON object per line: `{"time":…,"level":…,"message":…,"label":…, metadata…}`.
struct JSONLogHandler: LogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var members = JSONValue.members([
            "time": .string(Timestamp.format(Date())),
            "level": .string(event.level.rawValue),
            "message": .string("\(event.message)"),
            "label": .string(label),
        ])
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }).sorted(by: { $0.key < $1.key })
        {
            members.append(JSONMember(key: k, value: .string("\(v)")))
        }
        FileHandle.standardError.write(Data(JSONWriter().encode(.object(members)) + [0x0A]))
    }
}
