"""dsar's PySpark program for `type: spark` connectors (issue 19; formats: notes/i19/contract.md).

Run by dsar as `spark-submit --master M [--conf k=v ...] dsar_spark_job.py SPEC.json`. The spec names
the mode, the tables and the output file; every result goes to that file as JSON lines written by
the driver (`toLocalIterator()`, so memory stays bounded). Nothing is printed to stdout; on failure
one line `DSAR-ERROR: <reason>` goes to stderr (identifier values scrubbed) and the exit code is 1.

Modes
- scan: for each table, every candidate row (`{"t":"row"...}`: file, fp, row, values), then one
  `{"t":"file"...}` line per file (rows, corrupt, bytes), or `{"t":"table"...,"files":0}` when the
  path holds no data file; last `{"t":"done"}`.
- check: per table the file and row counts, the columns (dotted names of nested fields too), the
  configured columns that are missing, the partition columns, or the error that stops the read.
- rewrite: for each entry, the rows of one file (`input_file_name() == file`) are written with
  `coalesce(1)` into the entry's `stage` directory, same format/options/schema without the
  partition columns: rows whose fp is listed dropped (erase: delete) or with their `redact` columns
  set to the placeholder (string) or null (other types) (erase: redact). The single part file
  written is reported (`{"t":"staged"...}`) after reading it back and counting its rows.

Candidate rules (a superset: dsar confirms every candidate with its exact matcher)
- a `match` column, `cast(... as string)` and transformed by its key kind, equals a key of that
  kind: exact `trim(v)`; lower `lower(trim(v))`; digits7 the last 7 digits of v's digits; ipv4
  `trim(v)`; ipv6group (v contains `:`) any hex run of `lower(v)` without leading zeros;
- a `text` column, `t = lower(v)`, has an ASCII letter/digit run equal to a `run` needle, a
  7-digit window of its digits equal to a `digits7` needle, an IPv4-shaped token (leading and
  trailing dots removed) equal to an `ipv4` needle, or a hex run (no leading zeros) equal to an
  `ipv6group` needle.
Keys and needles are one small DataFrame of (kind, value), broadcast and left-semi joined against
the exploded (kind, value) probes of each row, never a literal IN list; the candidates are then
de-duplicated by a row id taken right after the read (`monotonically_increasing_id()`).
`fp = sha2(to_json(struct(all columns incl. partition columns)), 256)`, in every mode.
"""

import json
import os
import sys

from pyspark import SparkConf
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

CORRUPT = "_corrupt_record"
RID, RFILE, RJSON, KEY_K, KEY_V = "__dsar_id", "__dsar_file", "__dsar_json", "__dsar_k", "__dsar_v"
FORMATS = ("parquet", "csv", "json")
KEY_KINDS = ("exact", "lower", "digits7", "ipv4", "ipv6group")
NEEDLE_KINDS = ("run", "digits7", "ipv4", "ipv6group")
# Applied unless the spark-submit command line sets them (--conf wins).
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.csv.parser.columnPruning.enabled": "false",  # malformed CSV rows are seen whatever is read
}
# Write options that are read-only or ours.
READ_ONLY = {"mode", "columnnameofcorruptrecord", "inferschema", "samplingratio", "basepath",
             "recursivefilelookup", "pathglobfilter", "enforceschema", "multiline"}
TEXT_CODECS = {".gz": "gzip", ".bz2": "bzip2", ".deflate": "deflate", ".lz4": "lz4", ".snappy": "snappy",
               ".zst": "zstd"}


class JobError(Exception):
    """A failure with a reason an operator can act on."""


def fail_if(cond, msg):
    if cond:
        raise JobError(msg)


def load_spec(path):
    try:
        with open(path, "rb") as f:
            spec = json.load(f)
    except (OSError, ValueError) as e:
        raise JobError(f"spec {path}: cannot read it as JSON ({type(e).__name__})")
    fail_if(not isinstance(spec, dict) or spec.get("version") != 1, f"spec {path}: field version: expected 1")
    fail_if(spec.get("mode") not in ("scan", "check", "rewrite"), f"spec {path}: field mode: expected scan, check or rewrite")
    fail_if(not isinstance(spec.get("output"), str) or not os.path.isabs(spec["output"]),
            f"spec {path}: field output: expected an absolute path")
    fail_if(not isinstance(spec.get("tables"), list), f"spec {path}: field tables: expected a list")
    for i, t in enumerate(spec["tables"]):
        where = f"spec {path}: tables[{i}]"
        fail_if(not isinstance(t, dict) or not isinstance(t.get("name"), str) or not isinstance(t.get("path"), str),
                f"{where}: expected an object with string fields name and path")
        fail_if(t.get("format") not in FORMATS, f"{where} ({t['name']}): field format: expected parquet, csv or json")
        for m in t.get("match") or []:
            fail_if(not isinstance(m, dict) or not isinstance(m.get("column"), str) or m.get("key") not in KEY_KINDS,
                    f"{where} ({t['name']}): field match: expected {{column, type, key}} with key one of {', '.join(KEY_KINDS)}")
    for field, kinds in (("keys", KEY_KINDS), ("needles", NEEDLE_KINDS)):
        for k in spec.get(field) or []:
            fail_if(not isinstance(k, dict) or k.get("kind") not in kinds or not isinstance(k.get("value"), str),
                    f"spec {path}: field {field}: expected {{kind, value}} with kind one of {', '.join(kinds)}")
    return spec


class Lake:
    """Hadoop FileSystem access through the driver's JVM (paths as `input_file_name()` gives them)."""

    def __init__(self, spark):
        self.jvm = spark._jvm
        self.conf = spark._jsc.hadoopConfiguration()

    def _path(self, s, uri=False):
        P = self.jvm.org.apache.hadoop.fs.Path
        return P(self.jvm.java.net.URI(s)) if uri else P(s)

    def _fs(self, p):
        return p.getFileSystem(self.conf)

    @staticmethod
    def canon(u):
        """`file:/x` as Spark's `input_file_name()` spells it: `file:///x`."""
        return "file://" + u[5:] if u.startswith("file:/") and not u.startswith("file://") else u

    def hadoop(self, file_uri):
        """A file URI as a path string for `load()` (decoded, glob characters escaped)."""
        s = self._path(file_uri, uri=True).toString()
        return "".join("\\" + ch if ch in "{}[]*?\\" else ch for ch in s)

    def local_or_uri(self, u):
        p = self._path(u, uri=True).toUri()
        return p.getPath() if p.getScheme() == "file" else u

    def exists(self, s):
        p = self._path(s)
        return self._fs(p).exists(p)

    def qualified(self, s):
        """The table path in the URI form of `input_file_name()` (`file:///lake/t`)."""
        p = self._path(s)
        return self.canon(self._fs(p).makeQualified(p).toUri().toString().rstrip("/"))

    def size(self, file_uri):
        p = self._path(file_uri, uri=True)
        return self._fs(p).getFileStatus(p).getLen()

    def data_files(self, s):
        """Files Spark would read under `s`: names starting with `_` or `.` (and their trees) are hidden."""
        p = self._path(s)
        fs = self._fs(p)
        if fs.getFileStatus(p).isFile():
            return [self.canon(fs.makeQualified(p).toUri().toString())]
        base = fs.makeQualified(p).toUri().getPath().rstrip("/")
        out, it = [], fs.listFiles(p, True)
        while it.hasNext():
            u = it.next().getPath().toUri()
            rel = u.getPath()[len(base):].strip("/").split("/")
            if not any(seg.startswith(("_", ".")) for seg in rel):
                out.append(self.canon(u.toString()))
        return out

    def list_dir(self, s):
        p = self._path(s)
        return [self.canon(st.getPath().toUri().toString()) for st in self._fs(p).listStatus(p)]

    def parent(self, file_uri):
        return self.canon(self._path(file_uri, uri=True).getParent().toUri().toString().rstrip("/"))

    def create_empty(self, u):
        p = self._path(u, uri=True)
        self._fs(p).create(p, False).close()


def col(name, columns):
    """A column by configured name: a top-level column of that exact name, else a dotted path."""
    if name in columns:
        return F.col("`" + name.replace("`", "``") + "`")
    return F.col(".".join("`" + part.replace("`", "``") + "`" for part in name.split(".")))


def flat_columns(schema, prefix=""):
    """Dotted names of every column and nested struct field."""
    out = []
    for f in schema.fields:
        out.append(prefix + f.name)
        if isinstance(f.dataType, T.StructType):
            out.extend(flat_columns(f.dataType, prefix + f.name + "."))
    return out


def field_type(schema, name):
    if name in schema.names:
        return schema[name].dataType
    dt = schema
    for part in name.split("."):
        fail_if(not isinstance(dt, T.StructType) or part not in dt.names, f"no column {name}")
        dt = dt[part].dataType
    return dt


class Table:
    """One configured table, read with partition discovery and (csv/json) a `_corrupt_record` column."""

    def __init__(self, spark, lake, spec):
        self.spec, self.name, self.fmt = spec, spec["name"], spec["format"]
        self.path = spec["path"]
        fail_if(not lake.exists(self.path), f"table {self.name}: path {self.path} does not exist")
        self.files = lake.data_files(self.path)
        self.base = lake.qualified(self.path)
        opts = {str(k): str(v) for k, v in (spec.get("options") or {}).items()}
        if self.fmt == "csv":
            opts.setdefault("header", "true")
        self.write_opts = {k: v for k, v in opts.items() if k.lower() not in READ_ONLY}
        if self.fmt != "parquet":
            opts.update(mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT)
        self.spark, self.opts, self.lake = spark, opts, lake
        self.schema = None
        if self.files:
            schema = self._reader().load(self.path).schema
            if self.fmt != "parquet" and CORRUPT not in schema.names:
                schema = T.StructType(schema.fields + [T.StructField(CORRUPT, T.StringType())])
            self.schema = schema
        names = self.schema.names if self.schema else []
        self.columns = [c for c in names if not (c == CORRUPT and self.fmt != "parquet")]
        self.partitions = self._partitions(names)

    def _reader(self):
        return self.spark.read.format(self.fmt).options(**self.opts)

    def _partitions(self, names):
        keys = []
        for f in self.files:
            rel = f[len(self.base):].strip("/").split("/")[:-1] if f.startswith(self.base) else []
            for seg in rel:
                k = seg.split("=", 1)[0] if "=" in seg else None
                if k and k in names and k not in keys:
                    keys.append(k)
        return keys

    def read(self, one_file=None):
        """The table (or one of its files, partition values still from the table's path) with
        the row id, the file and the row JSON added."""
        r = self._reader().schema(self.schema)
        if one_file and one_file != self.base:
            df = r.option("basePath", self.path).load(self.lake.hadoop(one_file))
        else:
            df = r.load(self.path)
        row_json = F.to_json(F.struct(*[col(c, self.columns) for c in self.columns]))
        return (df.withColumn(RID, F.monotonically_increasing_id()).withColumn(RFILE, F.input_file_name())
                .withColumn(RJSON, row_json))

    def data_schema(self, names=None):
        """The table's schema without the corrupt-record column (and only `names`, if given)."""
        keep = names if names is not None else self.columns
        return T.StructType([f for f in self.schema.fields if f.name in keep])

    def configured(self):
        s = self.spec
        return list(dict.fromkeys([m["column"] for m in s.get("match") or []] + list(s.get("text") or [])))

    def missing(self):
        have = set(flat_columns(self.data_schema()))
        have.update(self.columns)
        return [c for c in self.configured() + list(self.spec.get("redact") or []) if c not in have]


def probes(table, kinds):
    """Every (kind, value) a row offers for the join, as one array<struct> column, or None.
    Kinds are tagged `m:<kind>` (match keys) and `n:<kind>` (text needles); `kinds` holds those sent."""
    scalars, arrays = [], []
    cols = table.columns

    def pair(kind, value):
        return F.struct(F.lit(kind).alias(KEY_K), value.alias(KEY_V))

    def arr(kind, values):  # array<string> -> array<struct<kind, value>>
        return F.transform(values, lambda x: pair(kind, x))

    def strip0(values):
        return F.transform(values, lambda x: F.regexp_replace(x, "^0+", ""))

    for m in table.spec.get("match") or []:
        k = m["key"]
        if "m:" + k not in kinds:
            continue
        v = col(m["column"], cols).cast("string")
        if k in ("exact", "ipv4"):
            scalars.append(pair("m:" + k, F.trim(v)))
        elif k == "lower":
            scalars.append(pair("m:" + k, F.lower(F.trim(v))))
        elif k == "digits7":
            d = F.regexp_replace(v, "[^0-9]", "")
            scalars.append(pair("m:" + k, F.when(F.length(d) >= 1, F.substring(d, -7, 7))))
        else:  # ipv6group: only values holding a ':'
            groups = strip0(F.split(F.lower(F.when(v.contains(":"), v).otherwise(F.lit(""))), "[^0-9a-f]+"))
            arrays.append(arr("m:" + k, groups))
    for name in table.spec.get("text") or []:
        t = F.lower(F.coalesce(col(name, cols).cast("string"), F.lit("")))
        if "n:run" in kinds:
            arrays.append(arr("n:run", F.split(t, "[^0-9a-z]+")))
        if "n:digits7" in kinds:
            d = F.regexp_replace(t, "[^0-9]", "")
            windows = F.transform(F.sequence(F.lit(1), F.greatest(F.length(d) - 6, F.lit(1))),
                                  lambda i: F.substring(d, i, 7))
            arrays.append(arr("n:digits7", windows))
        if "n:ipv4" in kinds:
            tokens = F.transform(F.split(t, "[^0-9.]+"), lambda x: F.regexp_replace(x, "^[.]+|[.]+$", ""))
            arrays.append(arr("n:ipv4", tokens))
        if "n:ipv6group" in kinds:
            arrays.append(arr("n:ipv6group", strip0(F.split(t, "[^0-9a-f]+"))))
    if not scalars and not arrays:
        return None
    parts = ([F.array(*scalars)] if scalars else []) + arrays
    return parts[0] if len(parts) == 1 else F.concat(*parts)


def key_frame(spark, spec):
    """The batch's keys and needles as one (kind, value) DataFrame, kinds tagged as in `probes`."""
    rows = [("m:" + k["kind"], k["value"]) for k in spec.get("keys") or []] + \
           [("n:" + k["kind"], k["value"]) for k in spec.get("needles") or []]
    schema = T.StructType([T.StructField(KEY_K, T.StringType(), False), T.StructField(KEY_V, T.StringType(), False)])
    return spark.createDataFrame(sorted(set(rows)), schema), {k for k, _ in rows}


def candidates(table, df, keys_df, kinds):
    """Rows of `df` with a probe in `keys_df` (broadcast left-semi join), one per row id; or None."""
    p = probes(table, kinds)
    if p is None:
        return None
    exploded = df.select("*", F.inline(p))
    hits = exploded.join(F.broadcast(keys_df), [KEY_K, KEY_V], "left_semi").drop(KEY_K, KEY_V)
    return hits.dropDuplicates([RID])


def file_stats(table, df):
    """{file: (rows, corrupt)} for every file of the read, files without rows included."""
    stats = {f: (0, 0) for f in table.files}
    aggs = [F.count(F.lit(1)).alias("n")]
    if table.fmt != "parquet":
        aggs.append(F.sum(F.col(CORRUPT).isNotNull().cast("long")).alias("c"))
        if table.columns:  # Spark refuses queries that read only the corrupt-record column
            aggs.append(F.count(col(table.columns[0], table.columns)).alias("x"))
    for r in df.groupBy(RFILE).agg(*aggs).toLocalIterator():
        stats[r[RFILE]] = (r["n"], (r["c"] or 0) if table.fmt != "parquet" else 0)
    return stats


def check_columns(table):
    missing = table.missing()
    fail_if(missing, f"table {table.name}: missing column(s) {', '.join(missing)} "
                     f"(the table has: {', '.join(flat_columns(table.data_schema()))})")


def scan(spark, lake, spec, out):
    keys_df, kinds = key_frame(spark, spec)
    for t in spec["tables"]:
        table = Table(spark, lake, t)
        if not table.files:
            out.line({"t": "table", "table": table.name, "files": 0, "rows": 0})
            continue
        check_columns(table)
        df = table.read()
        c = candidates(table, df, keys_df, kinds)
        if c is not None:
            configured = table.configured()
            vals = [col(name, table.columns).cast("string").alias(f"__dsar_v{i}") for i, name in enumerate(configured)]
            q = c.select(RFILE, RJSON, F.sha2(F.col(RJSON), 256).alias("fp"), *vals)
            for r in q.toLocalIterator():
                values = json.dumps({name: r[f"__dsar_v{i}"] for i, name in enumerate(configured)}, ensure_ascii=False)
                out.raw('{"t":"row","table":%s,"file":%s,"fp":"%s","row":%s,"values":%s}' % (
                    json.dumps(table.name, ensure_ascii=False), json.dumps(r[RFILE], ensure_ascii=False),
                    r["fp"], r[RJSON], values))
        for f, (n, bad) in sorted(file_stats(table, df).items()):
            out.line({"t": "file", "table": table.name, "file": f, "rows": n, "corrupt": bad, "bytes": lake.size(f)})
    return len(spec["tables"])


def check(spark, lake, spec, out):
    for t in spec["tables"]:
        line = {"t": "check", "table": t["name"], "files": 0, "rows": 0, "columns": [], "missing": [],
                "partitions": [], "error": None}
        try:
            table = Table(spark, lake, t)
            if not table.files:
                line["error"] = f"table {table.name}: path {table.path} holds no data file"
            else:
                stats = file_stats(table, table.read())
                line.update(files=len(stats), rows=sum(n for n, _ in stats.values()),
                            corrupt=sum(c for _, c in stats.values()),
                            columns=flat_columns(table.data_schema()), missing=table.missing(),
                            partitions=table.partitions)
        except Exception as e:  # noqa: BLE001 - one line per table, the run goes on
            line["error"] = reason(e)
        out.line(line)
    return len(spec["tables"])


def text_codec(file_uri):
    for ext, codec in TEXT_CODECS.items():
        if file_uri.endswith(ext):
            return codec
    return None


def rewrite(spark, lake, spec, out):
    tables = {t["name"]: t for t in spec["tables"]}
    opened = {}
    for i, e in enumerate(spec.get("rewrite") or []):
        where = f"rewrite[{i}]"
        fail_if(not isinstance(e, dict) or e.get("table") not in tables, f"{where}: field table: expected a table of the spec")
        fail_if(not isinstance(e.get("file"), str) or not isinstance(e.get("stage"), str)
                or not isinstance(e.get("rows"), list), f"{where}: expected string fields file, stage and a list rows")
        name, file = e["table"], e["file"]
        if name not in opened:
            opened[name] = Table(spark, lake, tables[name])
        table = opened[name]
        fail_if(file not in table.files, f"table {name}: file {file} is not a data file of {table.path}")
        stage = lake.qualified(e["stage"])
        fail_if(not stage.rsplit("/", 1)[-1].startswith(".dsar-stage-") or lake.parent(stage) != lake.parent(file),
                f"table {name}: stage {e['stage']} must be a sibling of {file} named .dsar-stage-*")
        fail_if(lake.exists(e["stage"]), f"table {name}: stage {e['stage']} already exists")
        check_columns(table)
        fail_if(table.fmt == "json" and table.opts.get("multiLine", table.opts.get("multiline", "false")).lower() == "true",
                f"table {name}: multiLine JSON files cannot be rewritten (Spark writes JSON lines)")
        erase = table.spec.get("erase", "delete")
        fail_if(erase not in ("delete", "redact"), f"table {name}: erase is {erase}: nothing to rewrite")
        own = spark.read.format(table.fmt).options(**table.opts).load(lake.hadoop(file)).schema \
            if table.fmt != "json" else None
        if own is not None:  # parquet and csv: this file's own columns, so none is lost
            extra = [c for c in own.names if c not in table.columns and c != CORRUPT]
            fail_if(extra or [c for c in table.columns if c not in own.names and c not in table.partitions],
                    f"table {name}: file {file} has other columns than the table ({', '.join(own.names)})")
        mentions = e.get("mentions") or []
        fail_if(not isinstance(mentions, list) or any(
            not isinstance(m, dict) or not isinstance(m.get("fp"), str) or not isinstance(m.get("columns"), list)
            or not all(c in (table.spec.get("text") or []) for c in m["columns"]) for m in mentions),
            f"{where}: field mentions: expected a list of {{fp, columns}} naming text columns of table {name}")
        fps = spark.createDataFrame([(str(x),) for x in set(e["rows"])], "fp string")
        df = table.read(file).where(F.col(RFILE) == file).withColumn("__dsar_fp", F.sha2(F.col(RJSON), 256))
        df = df.join(F.broadcast(fps.withColumn("__dsar_listed", F.lit(True))),
                     df["__dsar_fp"] == fps["fp"], "left_outer").withColumn(
            "__dsar_listed", F.coalesce(F.col("__dsar_listed"), F.lit(False))).drop("fp")
        # Rows that only mention the subject in a text column (someone else's record): never deleted;
        # the text columns that mention the subject are overwritten, whatever the table's strategy.
        mfps = spark.createDataFrame([(str(m["fp"]), [str(c) for c in m["columns"]]) for m in mentions],
                                     "mfp string, __dsar_mcols array<string>")
        df = df.join(F.broadcast(mfps), df["__dsar_fp"] == mfps["mfp"], "left_outer").drop("mfp")
        mentioned = F.col("__dsar_mcols").isNotNull() & ~F.col("__dsar_listed")
        aggs = [F.count(F.lit(1)).alias("n"), F.sum(F.col("__dsar_listed").cast("long")).alias("k"),
                F.sum(mentioned.cast("long")).alias("m")]
        if table.fmt != "parquet":
            aggs.append(F.sum(F.col(CORRUPT).isNotNull().cast("long")).alias("c"))
        s = df.agg(*aggs).collect()[0]
        before, listed = s["n"], s["k"] or 0
        matched = listed + (s["m"] or 0)
        fail_if(before == 0, f"table {name}: Spark read no row from {file}")
        bad = (s["c"] or 0) if table.fmt != "parquet" else 0
        fail_if(bad > 0, f"table {name}: file {file} has {bad} row(s) Spark cannot parse; rewriting would change them")
        data_cols = [c for c in table.columns if c not in table.partitions]
        if erase == "delete":
            kept = df.where(~F.col("__dsar_listed")).select(*[masked(table, col(c, table.columns), c) for c in data_cols])
        else:
            kept = df.select(*[masked(table, redacted(table, c), c) for c in data_cols])
        w = kept.coalesce(1).write.format(table.fmt).options(**table.write_opts).mode("errorifexists")
        codec = text_codec(file) if table.fmt != "parquet" else None
        if codec:
            w = w.option("compression", codec)
        w.save(e["stage"])
        parts = [u for u in lake.list_dir(e["stage"]) if u.rsplit("/", 1)[-1].startswith("part-")]
        if not parts and table.fmt == "json" and before == matched and erase == "delete":
            parts = [stage + "/part-00000.json"]
            lake.create_empty(parts[0])
        fail_if(len(parts) != 1, f"table {name}: Spark wrote {len(parts)} data files into {e['stage']}, expected 1")
        after = spark.read.format(table.fmt).options(**table.opts).schema(table.data_schema(data_cols)) \
            .load(lake.hadoop(parts[0])).count()
        expected = before - listed if erase == "delete" else before
        fail_if(after != expected, f"table {name}: {parts[0]} holds {after} rows, expected {expected}")
        out.line({"t": "staged", "table": name, "file": file, "stage": e["stage"],
                  "part": lake.local_or_uri(parts[0]), "rows_before": before, "rows_after": after, "matched": matched})
    return len(spec["tables"])


def replacement(table, field):
    """What a redacted `field` holds: the placeholder for a string, null otherwise."""
    dt = field_type(table.schema, field)
    return F.lit(table.spec.get("placeholder", "[REDACTED]")) if isinstance(dt, T.StringType) else F.lit(None).cast(dt)


def redacted(table, name):
    """Column `name` (top-level) of the output, with configured `redact` fields replaced on listed rows (no alias)."""
    c = col(name, table.columns)
    for r in table.spec.get("redact") or []:
        top, _, rest = (r, "", "") if r in table.columns else r.partition(".")
        if top != name:
            continue
        value = replacement(table, r)
        c = F.when(F.col("__dsar_listed"), c.withField(rest, value) if rest else value).otherwise(c)
    return c


def masked(table, c, name):
    """`c` (output column `name`) with the text fields of mention rows (`__dsar_mcols`) replaced."""
    for t in table.spec.get("text") or []:
        top, _, rest = (t, "", "") if t in table.columns else t.partition(".")
        if top != name:
            continue
        value = replacement(table, t)
        c = F.when(F.array_contains(F.col("__dsar_mcols"), t), c.withField(rest, value) if rest else value).otherwise(c)
    return c.alias(name)


class Output:
    """The results file (mode 0600), one JSON object per line."""

    def __init__(self, path):
        self.path = path
        self.f = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8")

    def line(self, obj):
        self.raw(json.dumps(obj, ensure_ascii=False))

    def raw(self, s):
        self.f.write(s)
        self.f.write("\n")


SECRETS = []


def reason(e):
    """One line for the operator: ours, or Spark's own first line; identifier values removed."""
    if isinstance(e, JobError):
        msg = str(e)
    else:
        java = getattr(e, "java_exception", None)
        msg = java.toString() if java is not None else f"{type(e).__name__}: {e}"
    lines = []
    for x in msg.splitlines():  # the message, without the JVM or Python stack
        if x.strip().startswith(("at ", "...", "Traceback", "File ")) or x.startswith("JVM stacktrace"):
            break
        lines.append(x.strip())
    line = " ".join(x for x in lines if x) or type(e).__name__
    for s in sorted(SECRETS, key=len, reverse=True):
        if len(s) >= 3:
            line = line.replace(s, "<identifier>").replace(s.lower(), "<identifier>")
    return line[:500]


def main(argv):
    if len(argv) != 2:
        print("DSAR-ERROR: usage: dsar_spark_job.py SPEC.json", file=sys.stderr)
        return 1
    out = spark = None
    try:
        spec = load_spec(argv[1])
        SECRETS.extend(k["value"] for k in (spec.get("keys") or []) + (spec.get("needles") or []))
        conf = SparkConf()
        builder = SparkSession.builder.appName(str(spec.get("app_name") or "dsar"))
        for k, v in DEFAULT_CONF.items():
            if not conf.contains(k):
                builder = builder.config(k, v)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        lake = Lake(spark)
        out = Output(spec["output"])
        n = {"scan": scan, "check": check, "rewrite": rewrite}[spec["mode"]](spark, lake, spec, out)
        out.line({"t": "done", "tables": n})
        out.f.close()
        return 0
    except BaseException as e:  # noqa: BLE001 - every failure becomes one DSAR-ERROR line
        print("DSAR-ERROR: " + reason(e), file=sys.stderr)
        if out is not None:
            out.f.close()
            os.unlink(out.path)
        return 1
    finally:
        if spark is not None:
            spark.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
