import Foundation

/// The catalog of a PostgreSQL database (`pg_catalog`): tables are resolved with `to_regclass`
/// on the quoted name, so `orders` follows the search_path and `public.orders` names its schema.
extension PostgresDatabase {
    /// The table's OID, or nil when there is no such table (or view) visible to the role.
    func relation(_ table: String) throws -> Int64? {
        var oid: Int64?
        try query("SELECT to_regclass($1)::oid::int8", [.text(quote(table))]) { r in
            if case .integer(let i) = r[0] { oid = i }
        }
        return oid
    }

    package func columns(of table: String) throws -> [LiveColumn]? {
        guard let oid = try relation(table) else { return nil }
        var out: [LiveColumn] = []
        // Domains are read as their base type.
        let sql = """
            SELECT a.attname::text, (CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END)::int8,
                   NOT a.attnotnull, format_type(a.atttypid, a.atttypmod)
            FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
            WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
            """
        try query(sql, [.integer(oid)]) { r in
            guard case .text(let name) = r[0], case .integer(let type) = r[1], case .bool(let nullable) = r[2],
                case .text(let typeName) = r[3]
            else { return }
            out.append(
                LiveColumn(
                    name: name, kind: PostgresValues.kind(ofType: UInt32(truncatingIfNeeded: type)), nullable: nullable,
                    typeName: typeName))
        }
        return out
    }

    package func primaryKey(of table: String) throws -> [String] {
        guard let oid = try relation(table) else { return [] }
        var out: [String] = []
        let sql = """
            SELECT a.attname::text FROM pg_catalog.pg_index i
            JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)
            """
        try query(sql, [.integer(oid)]) { r in if case .text(let n) = r[0] { out.append(n) } }
        return out
    }

    /// Foreign keys from one of `tables` to another (a table referencing itself is left out: its
    /// rows go in one statement, which PostgreSQL checks at its end).
    package func foreignKeys(among tables: [String]) throws -> [LiveForeignKey] {
        var byOID: [Int64: String] = [:]
        for t in tables { if let oid = try relation(t), byOID[oid] == nil { byOID[oid] = t } }
        guard !byOID.isEmpty else { return [] }
        var out: [LiveForeignKey] = []
        let sql = """
            SELECT conname::text, conrelid::int8, confrelid::int8 FROM pg_catalog.pg_constraint
            WHERE contype = 'f' AND conrelid = ANY($1::int8[]) AND confrelid = ANY($1::int8[]) AND conrelid <> confrelid
            ORDER BY conname
            """
        try query(sql, [.integerArray(byOID.keys.sorted())]) { r in
            guard case .text(let name) = r[0], case .integer(let child) = r[1], case .integer(let parent) = r[2],
                let c = byOID[child], let p = byOID[parent]
            else { return }
            out.append(LiveForeignKey(constraint: name, child: c, parent: p))
        }
        return out
    }

    /// SELECT, UPDATE and DELETE as `has_table_privilege(current_user, …)` says; none without
    /// USAGE on the table's schema.
    /// Row-level security hides rows from a role unless it is a superuser, has BYPASSRLS, or owns
    /// the table (and the table does not FORCE row security).
    package func rowFilter(on table: String) throws -> String? {
        guard let oid = try relation(table) else { return nil }
        var applies = false
        let sql = """
            SELECT c.relrowsecurity
                   AND NOT (r.rolsuper OR r.rolbypassrls OR (c.relowner = r.oid AND NOT c.relforcerowsecurity))
            FROM pg_catalog.pg_class c, pg_catalog.pg_roles r
            WHERE c.oid = $1::oid AND r.rolname = current_user
            """
        try query(sql, [.integer(oid)]) { r in applies = r.first == .bool(true) }
        return applies
            ? "row-level security on \(table) may hide rows from this role: give it BYPASSRLS (ALTER ROLE … BYPASSRLS) or a policy that shows it every row"
            : nil
    }

    package func privileges(on table: String) throws -> LivePrivileges {
        let found: Int64?
        do {
            found = try relation(table)
        } catch let e as DSARError where (e.cause as? PostgresServerError)?.sqlstate == "42501" {
            return []  // no USAGE on the schema: the name cannot even be looked up
        }
        guard let oid = found else { return [] }
        var p: LivePrivileges = []
        let sql = """
            SELECT has_schema_privilege(current_user, c.relnamespace, 'USAGE'),
                   has_table_privilege(current_user, c.oid, 'SELECT'),
                   has_table_privilege(current_user, c.oid, 'UPDATE'),
                   has_table_privilege(current_user, c.oid, 'DELETE')
            FROM pg_catalog.pg_class c WHERE c.oid = $1::oid
            """
        try query(sql, [.integer(oid)]) { r in
            guard r.count == 4, r[0] == .bool(true) else { return }
            if r[1] == .bool(true) { p.insert(.select) }
            if r[2] == .bool(true) { p.insert(.update) }
            if r[3] == .bool(true) { p.insert(.delete) }
        }
        return p
    }
}
