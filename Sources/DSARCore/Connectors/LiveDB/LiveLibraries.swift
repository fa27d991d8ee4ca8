import CLibPQ
import CMariaDB
import CSQLite

/// The client library versions linked in (for `dsar version` and bug reports).
package enum LiveLibraries {
    /// libpq, MariaDB Connector/C and SQLite, as each reports itself.
    package static var versions: String {
        "libpq \(PQlibVersion()), MariaDB Connector/C \(String(cString: mysql_get_client_info())), SQLite \(String(cString: sqlite3_libversion()))"
    }
}
