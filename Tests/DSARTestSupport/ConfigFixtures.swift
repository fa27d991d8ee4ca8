import DSARCore
import Foundation

/// `yaml` as the `config.yaml` of a fresh temp spool, read by ``SpoolConfig/load(_:)``.
package func loadSpoolConfig(_ yaml: String) throws -> SpoolConfig {
    let spool = try TempSpool()
    try FileManager.default.createDirectory(atPath: spool.root, withIntermediateDirectories: true)
    try FileSystem.writeAtomically(spool.root + "/config.yaml", Array(yaml.utf8), mode: 0o640)
    return try SpoolConfig.load(spool.layout)
}

/// The problems (`file:line: key: message`) ``SpoolConfig/load(_:)`` finds in `yaml`; empty when it loads.
package func spoolConfigProblems(_ yaml: String) throws -> [String] {
    do {
        _ = try loadSpoolConfig(yaml)
        return []
    } catch let e as ConfigProblems {
        return e.problems.map(\.description)
    }
}
