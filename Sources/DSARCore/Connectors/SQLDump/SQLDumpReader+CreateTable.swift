#if canImport(Glibc)
import Glibc
#endif

/// CREATE TABLE: column names and declared types.
extension SQLDumpReader {
    static let tableModifiers: Set<String> = [
        "OR", "REPLACE", "GLOBAL", "LOCAL", "TEMP", "TEMPORARY", "UNLOGGED", "VIRTUAL", "FOREIGN",
    ]
    /// Words that start a table constraint (reserved in all three dialects, so never a bare column name).
    static let constraintWords: Set<String> = ["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"]
    /// MySQL index definitions (`KEY`, `INDEX` are reserved there; in SQLite `key` is a fine column name).
    static let mysqlIndexWords: Set<String> = ["KEY", "INDEX", "FULLTEXT", "SPATIAL"]

    /// Whether the element of a CREATE TABLE list starting with bare word `u` is a constraint, not a column.
    static func isConstraint(_ u: String, _ cur: SQLCursor, dialect: SQLDialect) -> Bool {
        if constraintWords.contains(u) { return true }
        if dialect == .mysql && mysqlIndexWords.contains(u) { return true }
        if dialect == .postgres && u == "LIKE" { return true }
        var look = cur
        look.skipTrivia()
        if u == "EXCLUDE" { return look.byte() == SQLByte.lparen || look.keyword(Array("USING".utf8)) }
        if u == "PERIOD" { return look.keyword(Array("FOR".utf8)) }
        return false
    }

    mutating func parseCreateTable(_ st: SQLStatementContext, opts: SQLLexOptions) {
        var cur = SQLCursor(st.b, from: st.start, end: st.end, opts: opts)
        cur.skipTrivia()
        guard cur.keyword(Self.kwCreate) else { return }
        while true {
            cur.skipTrivia()
            guard let w = cur.word() else { return }
            let u = cur.upper(w)
            if u == "TABLE" { break }
            if !Self.tableModifiers.contains(u) { return }
        }
        cur.skipTrivia()
        let save = cur.i
        if cur.keyword(Array("IF".utf8)) {
            cur.skipTrivia()
            if cur.keyword(Array("NOT".utf8)) {
                cur.skipTrivia()
                _ = cur.keyword(Array("EXISTS".utf8))
            } else {
                cur.i = save
            }
        }
        let parts = cur.qualifiedName()
        guard let name = parts.last else { return }
        let schema = parts.count >= 2 ? parts[parts.count - 2] : nil
        var columns: [String] = []
        var types: [SQLColumnType] = []
        cur.skipTrivia()
        if cur.byte() == SQLByte.lparen {
            cur.i += 1
            while !cur.atEnd {
                cur.skipTrivia()
                if cur.byte() == SQLByte.rparen { break }
                let elementStart = cur.i
                var column: String?
                if let w = cur.word() {
                    if !Self.isConstraint(cur.upper(w), cur, dialect: opts.dialect) { column = cur.text(w) }
                } else {
                    cur.i = elementStart
                    column = cur.identifier()
                }
                if let column {
                    cur.skipTrivia()
                    let typeWord = cur.word().map { cur.text($0).lowercased() } ?? ""
                    columns.append(column)
                    types.append(SQLColumnType(declared: typeWord))
                }
                cur.skipListItem()
                if cur.byte() == SQLByte.comma {
                    cur.i += 1
                } else {
                    break
                }
            }
        }
        register(SQLTableInfo(schema: schema, name: name, columns: columns, types: types), replace: true)
    }
}
