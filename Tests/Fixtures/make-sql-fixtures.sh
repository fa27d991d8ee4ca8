#!/usr/bin/env bash
# Regenerates the SQL-dump fixtures in Tests/Fixtures/sql/ with the real tools:
# pg_dump (PostgreSQL 15), mysqldump (MariaDB 10.11) and sqlite3 (3.40) on Debian 12.
#
# Run as root. Installs what is missing (apt), then starts PRIVATE, throw-away server
# instances in a temp directory (Unix sockets only, no TCP port, nothing of the system's
# own clusters is touched), loads the same small schema and data into each, dumps, and
# stops them again. The logical data is defined once (below, in Python) and also written
# to sql/expected.json, so tests can compare every dump's parsed rows with it.
#
# The output is committed; run this only to regenerate it:  bash Tests/Fixtures/make-sql-fixtures.sh
# Truncated dumps are not stored: SQLDumpTruncationTests cuts these complete ones at computed offsets.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/sql"
mkdir -p "$out"

need=()
command -v pg_dump >/dev/null 2>&1 || need+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)
command -v mysqldump >/dev/null 2>&1 || need+=(mariadb-client)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if ((${#need[@]})); then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi

pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
[[ -x "$pgbin/initdb" ]] || { echo "no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 1; }

tmp="$(mktemp -d /tmp/dsar-sql-fixtures.XXXXXX)"
chmod 755 "$tmp"
pgdata="$tmp/pg"
mydata="$tmp/my"
pg_started=0
my_pid=""
cleanup() {
    if ((pg_started)); then runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true; fi
    if [[ -n "$my_pid" ]]; then
        kill "$my_pid" 2>/dev/null || true
        wait "$my_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------
# 1. The data, defined once; Python writes the load scripts for each engine and expected.json.
# ---------------------------------------------------------------------------------------
python3 - "$tmp" "$out/expected.json" <<'PY'
import json, sys
from decimal import Decimal

tmp, expected_path = sys.argv[1], sys.argv[2]
B = bytes.fromhex

customers_cols = ["id", "email", "name", "phone", "notes", "avatar"]
customers = [
    (1, "bob@example.org", "Bob Builder", "+44 20 7946 0000", None, None),
    (2, "carol@example.net", "Carol O'Brien", None, 'Prefers "double quotes"; it\'s fine', None),
    (3, "erin@example.com", "Erin", "",
     "literal backslash-n: \\n and a real newline:\nend; also \");\nINSERT INTO customers VALUES (9, 'x');", None),
    (4, "frank@example.com", "Frank", None, "tab\there, CRLF\r\nand 100% \\% done", B("")),
    (5, "Grace@Example.com", "Grace Hopper", None, "$$ dollar $$ and $tag$ text", None),
    (6, "heidi@example.com", "Heidi", "0041 44 000 00 00", "-- not a comment /* nor this */ # nor this", None),
    (7, "dave@example.com", "Dave", "555-0199", "C:\\path\\to\\file.txt", None),
    (1042, "alice@example.com", "Alice Liddell", "+1 555 0100", "VIP customer\tgold tier\nsecond line", B("00275cff")),
    (10420, "malice@example.com", "Mal Ice", "+1 555 0142", "not the subject; id 10420", B("89504e470d0a1a0a")),
    (21042, "alice@example.com.evil.org", "Zoë 日本語 😀", None, "look-alike domain", None),
]
orders_cols = ["id", "customer_id", "total", "note"]
orders = [
    (1, 1042, Decimal("19.99"), "first order"),
    (2, 1042, Decimal("5.00"), None),
    (3, 1042, Decimal("-3.50"), "refund for alice@example.com"),
    (4, 10420, Decimal("100.00"), "malice order"),
    (5, 21042, Decimal("0.00"), "look-alike"),
    (6, 1, Decimal("12.34"), "bob"),
    (7, 2, Decimal("1042.00"), "amount equals the subject id"),
    (8, 7, Decimal("99999999.99"), "max"),
]
tickets_cols = ["id", "customer_email", "body"]
tickets = [
    (1, "alice@example.com", "Hi, I am alice@example.com, please delete my data."),
    (2, "bob@example.org", "Please forward this to ALICE@Example.COM asap"),
    (3, None, "Unsubscribe link: https://example.com/u?e=alice%40example.com"),
    (4, "malice@example.com", "I am malice@example.com, not alice."),
    (5, "zoe@example.jp", "こんにちは Zoë 😀 — multi\nline\twith tab"),
    (6, "dave@example.com", "My order 10420 vs 21042, wrong customer?"),
    (7, "alice@example.com.evil.org", "Spoofed sender"),
    (8, "carol@example.net", "It's broken: C:\\Users\\carol\\"),
]
tables = [("customers", customers_cols, customers), ("orders", orders_cols, orders),
          ("support_tickets", tickets_cols, tickets)]

def lit_pg(v):
    if v is None: return "NULL"
    if isinstance(v, bytes): return "'\\x" + v.hex() + "'::bytea"
    if isinstance(v, (int, Decimal)): return str(v)
    if any(c in v for c in "\\\n\r\t"):
        return "E'" + v.replace("\\", "\\\\").replace("'", "''").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + "'"
    return "'" + v.replace("'", "''") + "'"

def lit_my(v):
    if v is None: return "NULL"
    if isinstance(v, bytes): return "X'" + v.hex() + "'"
    if isinstance(v, (int, Decimal)): return str(v)
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + "'"

def lit_lite(v):
    if v is None: return "NULL"
    if isinstance(v, bytes): return "X'" + v.hex() + "'"
    if isinstance(v, (int, Decimal)): return str(v)
    parts, cur = [], ""
    for c in v:
        if c in "\n\r\t":
            parts.append("'" + cur.replace("'", "''") + "'"); cur = ""
            parts.append("char(%d)" % ord(c))
        else:
            cur += c
    parts.append("'" + cur.replace("'", "''") + "'")
    return "||".join(parts)

def inserts(lit):
    out = []
    for name, cols, rows in tables:
        for r in rows:
            out.append("INSERT INTO %s (%s) VALUES (%s);" % (name, ", ".join(cols), ", ".join(lit(v) for v in r)))
    return "\n".join(out) + "\n"

pg = r"""
CREATE TABLE customers (id integer PRIMARY KEY, email text NOT NULL, name text, phone text, notes text, avatar bytea);
CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer REFERENCES customers(id), total numeric(10,2), note text);
CREATE TABLE support_tickets (id integer PRIMARY KEY, customer_email text, body text);
COMMENT ON TABLE customers IS 'Customer master; holds PII. Not an INSERT INTO customers VALUES (1);';
CREATE FUNCTION log_ticket() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  -- a function body with statements and quotes: it's "here"; $$ too
  INSERT INTO support_tickets (id, customer_email, body) VALUES (NEW.id + 100000, NEW.email, 'auto; created');
  RETURN NEW;
END
$body$;
""" + inserts(lit_pg)

my = r"""
CREATE TABLE customers (id int NOT NULL, email text NOT NULL, name text, phone text, notes text, avatar blob,
  PRIMARY KEY (id), KEY idx_email (email(100))) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE orders (id int NOT NULL, customer_id int, total decimal(10,2), note text, PRIMARY KEY (id),
  CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE support_tickets (id int NOT NULL, customer_email text, body text, PRIMARY KEY (id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
DELIMITER //
CREATE TRIGGER customers_audit AFTER DELETE ON customers FOR EACH ROW
BEGIN
  INSERT INTO support_tickets (id, customer_email, body) VALUES (OLD.id + 100000, OLD.email, 'deleted; by trigger');
END//
DELIMITER ;
""" + inserts(lit_my)

lite = r"""
CREATE TABLE customers (id integer PRIMARY KEY, email text NOT NULL, name text, phone text, notes text, avatar blob);
CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer REFERENCES customers(id), total numeric(10,2), note text);
CREATE TABLE "support_tickets" ("id" integer PRIMARY KEY, "customer_email" text, "body" text);
CREATE TRIGGER customers_audit AFTER DELETE ON customers BEGIN
  UPDATE orders SET note = CASE WHEN note IS NULL THEN 'gone' ELSE note END WHERE customer_id = old.id;
  INSERT INTO support_tickets (customer_email, body) VALUES (old.email, 'deleted; by trigger');
END;
""" + inserts(lit_lite)

for name, text in (("load_pg.sql", pg), ("load_my.sql", my), ("load_lite.sql", lite)):
    with open(tmp + "/" + name, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)

def jv(v):
    if v is None: return "null"
    if isinstance(v, bytes): return json.dumps(v.hex())
    if isinstance(v, (int, Decimal)): return str(v)
    return json.dumps(v, ensure_ascii=False)

lines = ["{"]
for ti, (name, cols, rows) in enumerate(tables):
    lines.append('  "%s": [' % name)
    for ri, r in enumerate(rows):
        obj = ", ".join('"%s": %s' % (c, jv(v)) for c, v in zip(cols, r))
        lines.append("    {" + obj + "}" + ("," if ri + 1 < len(rows) else ""))
    lines.append("  ]" + ("," if ti + 1 < len(tables) else ""))
lines.append("}")
with open(expected_path, "w", encoding="utf-8", newline="\n") as f:
    f.write("\n".join(lines) + "\n")
PY

# ---------------------------------------------------------------------------------------
# 2. PostgreSQL: a private cluster in $tmp/pg, listening on a socket in $tmp only.
# ---------------------------------------------------------------------------------------
mkdir -p "$pgdata" "$tmp/pgsock"
chown postgres: "$pgdata" "$tmp/pgsock"
runuser -u postgres -- "$pgbin/initdb" -D "$pgdata" -E UTF8 --locale=C -A trust -U postgres >/dev/null
runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdata" -w -l "$tmp/pgsock/pg.log" \
    -o "-c listen_addresses='' -k $tmp/pgsock -p 5499" start >/dev/null
pg_started=1
pgc=(-h "$tmp/pgsock" -p 5499 -U postgres)
runuser -u postgres -- "$pgbin/createdb" "${pgc[@]}" dsar
runuser -u postgres -- "$pgbin/psql" "${pgc[@]}" -d dsar -v ON_ERROR_STOP=1 -q -f "$tmp/load_pg.sql" >/dev/null
pgdump() { runuser -u postgres -- "$pgbin/pg_dump" "${pgc[@]}" "$@" dsar; }
pgdump >"$out/pg_default.sql"
pgdump --inserts >"$out/pg_inserts.sql"
pgdump --column-inserts >"$out/pg_column_inserts.sql"
pgdump --rows-per-insert=3 >"$out/pg_rows_per_insert.sql"
runuser -u postgres -- "$pgbin/psql" "${pgc[@]}" -d dsar -v ON_ERROR_STOP=1 \
    -c "COPY customers TO STDOUT WITH CSV HEADER" >"$out/pg_copy_customers.csv"

# ---------------------------------------------------------------------------------------
# 3. MariaDB: a private mariadbd on a socket in $tmp, no networking.
# ---------------------------------------------------------------------------------------
mkdir -p "$mydata"
mariadb-install-db --user=root --datadir="$mydata" --auth-root-authentication-method=socket \
    --skip-test-db >"$tmp/my-install.log" 2>&1
mariadbd --no-defaults --user=root --datadir="$mydata" --socket="$tmp/my.sock" --skip-networking \
    --pid-file="$tmp/my.pid" --log-error="$tmp/my.err" --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_unicode_ci &
my_pid=$!
for _ in $(seq 1 100); do
    mariadb-admin --no-defaults --socket="$tmp/my.sock" -uroot ping >/dev/null 2>&1 && break
    sleep 0.2
done
myc=(--no-defaults --socket="$tmp/my.sock" -uroot --default-character-set=utf8mb4)
mariadb "${myc[@]}" -e "CREATE DATABASE dsar CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
mariadb "${myc[@]}" dsar <"$tmp/load_my.sql"
mysqldump "${myc[@]}" dsar >"$out/mysql_default.sql"
mysqldump "${myc[@]}" --skip-extended-insert dsar >"$out/mysql_skip_extended.sql"
mysqldump "${myc[@]}" --hex-blob dsar >"$out/mysql_hex_blob.sql"

# ---------------------------------------------------------------------------------------
# 4. SQLite.
# ---------------------------------------------------------------------------------------
sqlite3 "$tmp/lite.db" <"$tmp/load_lite.sql"
sqlite3 "$tmp/lite.db" .dump >"$out/sqlite.sql"

echo "wrote:"
for f in "$out"/*; do printf '  %-28s %6d bytes\n' "$(basename "$f")" "$(wc -c <"$f")"; done
