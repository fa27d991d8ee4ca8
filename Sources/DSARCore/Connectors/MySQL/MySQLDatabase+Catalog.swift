import Foundation

/// The catalog of a MySQL/MariaDB database from `information_schema`: a table is `name` (in the
/// connection's database) or `schema.name`.
extension MySQLDatabase {
    /// The schema (nil: `DATABASE()`) and name of a configured table.
    func split(_ table: String) -> (schema: String?, name: String) {
        guard let dot = table.firstIndex(of: ".") else { return (nil, table) }
        return (String(table[..<dot]), String(table[table.index(after: dot)...]))
    }

    /// `(schema, name)` as bound parameters, the schema defaulting to the connection's database.
    private func where2(_ table: String) -> (sql: String, params: [LiveParam]) {
        let (s, n) = split(table)
        return (
            "TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?", [s.map(LiveParam.text) ?? .null, .text(n)]
        )
    }

    package func columns(of table: String) throws -> [LiveColumn]? {
        let w = where2(table)
        var out: [LiveColumn] = []
        try query(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS WHERE \(w.sql) ORDER BY ORDINAL_POSITION",
            w.params
        ) { r in
            guard case .text(let name) = r[0] else { return }
            let dataType = r[1].catalogText.lowercased()
            out.append(
                LiveColumn(
                    name: name, kind: Self.kind(dataType: dataType, columnType: r[2].catalogText.lowercased()),
                    nullable: r[3].catalogText == "YES", typeName: r[2].catalogText))
        }
        return out.isEmpty ? nil : out
    }

    /// The column kind of an `information_schema` `DATA_TYPE` (`varchar`, `bigint`, `blob`…).
    static func kind(dataType: String, columnType: String) -> LiveColumnKind {
        switch dataType {
        case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set": return .text
        case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year", "bit": return .integer
        case "decimal", "numeric", "float", "double", "real": return .decimal
        case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob": return .bytes
        case "date", "datetime", "timestamp": return .timestamp
        case "json": return .json
        default: return .other
        }
    }

    package func primaryKey(of table: String) throws -> [String] {
        let w = where2(table)
        var out: [String] = []
        try query(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE \(w.sql) AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
            w.params
        ) { r in out.append(r[0].catalogText) }
        return out
    }

    package func foreignKeys(among tables: [String]) throws -> [LiveForeignKey] {
        let current = try currentDatabase()
        /// Configured name by (schema, name).
        var byKey: [String: String] = [:]
        for t in tables {
            let (s, n) = split(t)
            byKey[(s ?? current) + "\u{0}" + n] = t
        }
        var out: [LiveForeignKey] = []
        var seen = Set<String>()
        for child in tables {
            let w = where2(child)
            try query(
                "SELECT CONSTRAINT_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE \(w.sql) AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION",
                w.params
            ) { r in
                let constraint = r[0].catalogText
                guard let parent = byKey[r[1].catalogText + "\u{0}" + r[2].catalogText],
                    seen.insert(child + "\u{0}" + constraint).inserted
                else { return }
                out.append(LiveForeignKey(constraint: constraint, child: child, parent: parent))
            }
        }
        return out
    }

    /// `DATABASE()`.
    func currentDatabase() throws -> String {
        var db = ""
        try query("SELECT DATABASE()", []) { r in db = r[0].catalogText }
        return db
    }

    /// From the grants of `CURRENT_USER()` on the server, the database and the table
    /// (`USER_PRIVILEGES`, `SCHEMA_PRIVILEGES`, `TABLE_PRIVILEGES`; a database grant with
    /// wildcards such as `shop\_%` counts). Column-level grants and roles are not counted.
    package func privileges(on table: String) throws -> LivePrivileges {
        let (s, n) = split(table)
        let schema = try s ?? currentDatabase()
        let grantee =
            "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')"
        let sql = """
            SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = \(grantee)
            UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES
              WHERE GRANTEE = \(grantee) AND (TABLE_SCHEMA = ? OR ? LIKE TABLE_SCHEMA)
            UNION SELECT PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES
              WHERE GRANTEE = \(grantee) AND TABLE_SCHEMA = ? AND TABLE_NAME = ?
            """
        var out: LivePrivileges = []
        try query(sql, [.text(schema), .text(schema), .text(schema), .text(n)]) { r in
            switch r[0].catalogText.uppercased() {
            case "SELECT": out.insert(.select)
            case "UPDATE": out.insert(.update)
            case "DELETE": out.insert(.delete)
            case "ALL PRIVILEGES", "ALL": out.formUnion([.select, .update, .delete])
            default: break
            }
        }
        return out
    }
}

extension LiveValue {
    /// The value as text (catalog columns are text; other kinds their text form, NULL empty).
    fileprivate var catalogText: String {
        switch self {
        case .null: return ""
        case .integer(let i): return String(i)
        case .bool(let b): return b ? "1" : "0"
        case .bytes(let b): return String(decoding: b, as: UTF8.self)
        case .text(let s), .decimal(let s), .timestamp(let s), .json(let s): return s
        }
    }
}
