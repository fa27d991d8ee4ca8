import Foundation

/// The checks made before anything is claimed (`dsar run`, `dsar watch`) and by
/// `dsar connectors check`: every problem of every connector config and of the spool settings the
/// pipeline needs, reported in one pass. A run with any problem exits 78 and leaves the inbox as it is.
package enum Preflight {
    /// What the check found.
    package struct Result: Sendable {
        /// The usable connector configs.
        package var configs: [ConnectorConfig]
        /// Every problem (empty: the spool may run).
        package var problems: [ConfigProblem]
    }

    /// Checks the connectors in `connectorsDir` and, when `config` is given, the spool settings.
    /// `full` adds what only `connectors check` reads: every glob must match a file, and dumps must
    /// hold the configured tables (a whole read of each dump).
    package static func check(
        layout: SpoolLayout, config: SpoolConfig?, connectorsDir dir: String, full: Bool
    ) -> Result {
        var problems: [ConfigProblem] = []
        var configs: [ConnectorConfig] = []
        let known = config?.knownIdentifierTypes ?? ConnectorCatalog.builtinTypes
        do {
            let (c, p) = try ConnectorCatalog.loadAll(
                dir: dir, checks: .init(knownTypes: known, headers: true, sources: full))
            configs = c
            problems += p
            if c.isEmpty && p.isEmpty {
                problems.append(
                    ConfigProblem(
                        file: dir, line: 0, key: "connectors",
                        message:
                            "no connector configs (*.yaml) here: dsar would search nothing and could not back any statement it signs. Add one (see README \"Connectors\"), or point --connectors / `connectors:` in config.yaml at the right directory"
                    ))
            }
        } catch let e as ConfigProblems {
            problems += e.problems
        } catch let e as DSARError {
            problems.append(
                ConfigProblem(
                    file: dir, line: 0, key: "connectors",
                    message: e.message + "; without connectors dsar would search nothing"))
        } catch {
            problems.append(ConfigProblem(file: dir, line: 0, key: "connectors", message: "\(error)"))
        }
        if let config { problems += spoolProblems(layout: layout, config: config) }
        return Result(configs: configs, problems: problems)
    }

    /// The spool settings every job may need: recipients to encrypt export bundles for, and a
    /// readable signing key for manifests, receipts and checkpoints.
    static func spoolProblems(layout: SpoolLayout, config: SpoolConfig) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        let yaml = try? YAMLMap.load(file: layout.config)
        func line(_ key: String) -> Int { yaml?.line(of: key) ?? 1 }
        if config.recipients.isEmpty {
            problems.append(
                ConfigProblem(
                    file: layout.config, line: line("recipients"), key: "recipients",
                    message:
                        "no recipients: an export bundle could not be encrypted for anyone. Add the privacy team's age key, e.g. recipients: [ age1… ] or a recipients file (dsar keygen --out DIR writes age.pub)"
                ))
        }
        for r in config.recipients {
            do {
                if try AgeKeys.recipients(from: r).isEmpty {
                    problems.append(
                        ConfigProblem(
                            file: layout.config, line: line("recipients"), key: "recipients",
                            message: "\(r) holds no age recipient"))
                }
            } catch {
                problems.append(
                    ConfigProblem(
                        file: layout.config, line: line("recipients"), key: "recipients", message: "\(r): \(error)"))
            }
        }
        if config.requireSignedRequests {
            let path = config.requestSigners ?? layout.keys + "/request_signers"
            if !FileSystem.exists(path) {
                problems.append(
                    ConfigProblem(
                        file: layout.config, line: line("require_signed_requests"), key: "require_signed_requests",
                        message:
                            "signed requests are required but there is no request signers file at \(path): create it in OpenSSH allowed_signers format (principal ssh-ed25519 AAAA…), or set request_signers"
                    ))
            } else {
                do { _ = try AllowedSigners(contentsOf: path) } catch {
                    problems.append(
                        ConfigProblem(
                            file: layout.config, line: line("request_signers"), key: "request_signers",
                            message: "\(error)"))
                }
            }
        }
        let keyPath = config.signingKey ?? layout.keys + "/signing_key"
        if config.signingKey != nil || FileSystem.exists(keyPath) {
            do {
                _ = try ManifestSigner.load(layout, config: config)
            } catch {
                problems.append(
                    ConfigProblem(
                        file: layout.config, line: line("signing_key"), key: "signing_key",
                        message: "the signing key \(keyPath) cannot be used: \(error)"))
            }
        }
        return problems
    }
}
