#!/usr/bin/env python3
"""Issue 19 benchmark: dsar's PySpark job against the same query typed into `spark-sql` by hand.

    /usr/bin/python3 bench/spark_bench.py [--rows 20000000] [--runs 3] [--subjects 1,1000,10000]

1. generates (once per row count, with Spark: `spark.range`) a Parquet table of N rows under
   bench/out/spark/events-<N>: user_id, email (mixed case), event, partitioned by a day column dt;
2. for each subject count, times (a) `spark-submit dsar_spark_job.py spec.json` in scan mode with
   the subjects' e-mails as `lower` keys on the `email` column, and (b) the hand-written
   `spark-sql -e "SELECT t.*, input_file_name() FROM parquet.`…` t LEFT SEMI JOIN (VALUES …) ids
   ON lower(t.email) = ids.e"` (`-f` with a temp .sql file for the larger lists);
3. prints a Markdown table of the medians of `--runs` runs and the ratio (goal: ≤ 1.2 at every size,
   flat in the number of subjects). Wall time of the whole process, JVM start included, for both.
Both run with --master local[2], spark.ui.enabled=false, spark.sql.shuffle.partitions=4.
With `--bin DSAR` (as `make bench` runs it), also (c) a real `dsar run` over a fresh spool whose one
connector is a `type: spark` connector on the same table, with N export requests (one batch:
`max_batch_jobs: 10000`): its search is the connector's duration in the job records (spark-submit, JVM
start included, and dsar's confirmation of every row); the whole run (intake, N sealed bundles) is shown
beside it. `--results FILE` puts the table into that Markdown file (section "Data lakes on Spark").
Not run by CI.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
JOB = os.path.join(ROOT, "Sources/DSARCore/Connectors/Spark/dsar_spark_job.py")
OUT = os.path.join(BENCH, "out", "spark")
CONF = ["--master", "local[2]", "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=4",
        "--conf", "spark.ui.showConsoleProgress=false"]
DAYS = 10
FILES_PER_DAY = 8


def spark_bin(name):
    import pyspark
    return os.path.join(os.path.dirname(pyspark.__file__), "bin", name)


def env():
    return dict(os.environ, PYSPARK_PYTHON="/usr/bin/python3", SPARK_LOCAL_IP="127.0.0.1")


def generate(path, rows):
    """Runs under spark-submit: the table, `spark.range` based."""
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.appName("dsar-bench-gen").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.range(0, rows, 1, FILES_PER_DAY).selectExpr(
        "concat('u', id) AS user_id",
        "concat(CASE WHEN id % 3 = 0 THEN 'User' ELSE 'user' END, id, '@Example.com') AS email",
        "element_at(array('view', 'click', 'cart', 'buy'), cast(id % 4 AS int) + 1) AS event",
        f"date_add(DATE'2026-11-01', cast(id % {DAYS} AS int)) AS dt")
    df.write.partitionBy("dt").parquet(path)
    spark.stop()


def timed(cmd, cwd, stdout):
    t0 = time.monotonic()
    with open(stdout, "w") as out:
        p = subprocess.run(cmd, cwd=cwd, env=env(), stdout=out, stderr=subprocess.PIPE, text=True)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd[:6])} …\n{p.stderr[-1500:]}")
    return dt


HEADING = "## Data lakes on Spark (`bench/spark_bench.py`)"


def dsar_run(dsar, table, emails, where):
    """A real `dsar run` with a `type: spark` connector over `table` and one export request per e-mail:
    (connector search s, whole run s, records found, jobs completed)."""
    sys.path.insert(0, BENCH)
    import bench
    reqs = os.path.join(where, "requests")
    shutil.rmtree(where, ignore_errors=True)
    os.makedirs(reqs)
    for k, e in enumerate(emails):
        with open(os.path.join(reqs, "r%05d.json" % k), "w") as f:
            json.dump({"request_id": "SPARK-%05d" % k, "action": "export", "email": e}, f)
    spool, _ = bench.fresh_spool(dsar, os.path.join(where, "s"), reqs)
    with open(os.path.join(spool, "config.yaml"), "a") as f:
        f.write("max_batch_jobs: 10000\n")
    conns = os.path.join(where, "connectors")
    os.makedirs(conns)
    with open(os.path.join(conns, "events.yaml"), "w") as f:
        f.write("name: events\ntype: spark\nmaster: local[2]\ntimeout: 3600\n"
                "conf: { spark.ui.enabled: \"false\", spark.sql.shuffle.partitions: \"4\" }\n"
                "tables:\n  events: { path: %s, format: parquet, match: { email: email }, erase: delete }\n" % table)
    t0 = time.monotonic()
    p = subprocess.run([dsar, "run", "--settle", "0", "--connectors", conns, "--spool", spool, "--log-format", "json"],
                       env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"dsar run failed ({p.returncode}):\n{p.stderr[-1500:]}")
    summary = bench.job_summary(dsar, spool)
    done = summary["statuses"].get("COMPLETED", 0)
    return summary["duration_ms"].get("events", 0) / 1000, wall, summary["records"].get("events", 0), done


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", help="a dsar binary: also time a real `dsar run` with a type: spark connector")
    ap.add_argument("--results", help="write the table into this Markdown file (its own section)")
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--subjects", default="1,1000,10000")
    ap.add_argument("--generate", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.generate:
        return generate(a.generate, a.rows)

    table = os.path.join(OUT, f"events-{a.rows}")
    if not os.path.exists(os.path.join(table, "_SUCCESS")):
        shutil.rmtree(table, ignore_errors=True)
        os.makedirs(OUT, exist_ok=True)
        t = timed([spark_bin("spark-submit"), *CONF, os.path.abspath(__file__), "--generate", table, "--rows", str(a.rows)],
                  OUT, os.devnull)
        print(f"generated {a.rows} rows in {t:.0f} s: {table}")
    work = tempfile.mkdtemp(prefix="dsar-spark-bench-")
    results = []
    try:
        for n in [int(x) for x in a.subjects.split(",")]:
            ids = sorted(random.Random(n).sample(range(a.rows), n))
            emails = [f"user{i}@example.com" for i in ids]
            spec = {"version": 1, "mode": "scan", "app_name": "dsar-bench", "output": os.path.join(work, "out.jsonl"),
                    "tables": [{"name": "events", "path": table, "format": "parquet",
                                "match": [{"column": "email", "type": "email", "key": "lower"}], "text": []}],
                    "keys": [{"kind": "lower", "value": e} for e in emails], "needles": []}
            spec_path = os.path.join(work, "spec.json")
            with open(spec_path, "w") as f:
                json.dump(spec, f)
            values = ", ".join(f"('{e}')" for e in emails)
            sql = (f"SELECT t.*, input_file_name() AS file FROM parquet.`{table}` t "
                   f"LEFT SEMI JOIN (VALUES {values}) AS ids(e) ON lower(t.email) = ids.e;")
            if n > 100:
                sql_path = os.path.join(work, "q.sql")
                with open(sql_path, "w") as f:
                    f.write(sql + "\n")
                sql_args = ["-f", sql_path]
            else:
                sql_args = ["-e", sql]
            dsar_t, sql_t, run_t, wall_t = [], [], [], []
            for _ in range(a.runs):
                dsar_t.append(timed([spark_bin("spark-submit"), *CONF, JOB, spec_path], work, os.devnull))
                found = sum(1 for line in open(spec["output"]) if line.startswith('{"t":"row"'))
                sql_t.append(timed([spark_bin("spark-sql"), *CONF, *sql_args], work, os.path.join(work, "sql.out")))
                sql_rows = sum(1 for _ in open(os.path.join(work, "sql.out")))
                if a.bin:
                    search, wall, records, done = dsar_run(os.path.abspath(a.bin), table, emails, os.path.join(work, "run"))
                    if records != n or done != n:
                        sys.exit(f"{n} subjects: dsar run found {records} records, {done} jobs COMPLETED; expected {n}")
                    run_t.append(search)
                    wall_t.append(wall)
            if found != n or sql_rows != n:
                sys.exit(f"{n} subjects: dsar found {found} rows, spark-sql {sql_rows}; expected {n}")
            results.append((n, statistics.median(dsar_t), statistics.median(sql_t), found,
                            statistics.median(run_t) if run_t else None, statistics.median(wall_t) if wall_t else None))
            print(f"{n} subjects: dsar job {dsar_t}, spark-sql {sql_t}, dsar run search {run_t}, whole run {wall_t}",
                  file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [HEADING, "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. A Parquet table of {a.rows:,} rows ({DAYS} dt "
             f"partitions × {FILES_PER_DAY} files), median of {a.runs} runs, `local[2]` on the same 2 cores, wall time "
             "with the JVM start. The hand-written query: `spark-sql` with `SELECT t.*, input_file_name() FROM "
             "parquet.`…` t LEFT SEMI JOIN (VALUES …) ids ON lower(t.email) = ids.e`. \"dsar run: search\" is the "
             "connector's duration in the job records of a real `dsar run` (spark-submit of dsar's program and "
             "dsar's confirmation of every row); \"whole run\" adds intake and one sealed bundle per request. Goal: "
             "search ≤ 1.2× the hand-written query at every size, flat in the number of subjects.", "",
             "| subjects | dsar_spark_job.py alone (s) | hand-written spark-sql (s) | dsar run: search (s) | "
             "search / spark-sql | dsar run: whole run (s) | rows found |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for n, d, q, found, search, wall in results:
        ratio = (search if search is not None else d) / q
        lines.append(f"| {n:,} | {d:.1f} | {q:.1f} | {'%.1f' % search if search is not None else '—'} | "
                     f"{ratio:.2f} | {'%.1f' % wall if wall is not None else '—'} | {found:,} |")
    print("\n" + "\n".join(lines))
    if a.results:
        sys.path.insert(0, BENCH)
        import bench
        bench.replace_section(a.results, HEADING, "\n".join(lines) + "\n")
        print(f"wrote the Spark section of {a.results}")


if __name__ == "__main__":
    main()
