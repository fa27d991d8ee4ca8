"""Hand-run self-check of dsar_spark_job.py against a generated lake (not part of the Swift suite).

    /usr/bin/python3 Tests/Fixtures/spark/selfcheck.py [--seed 7] [--keep]

1. make_lake.py writes a lake into a temp dir (spark-submit);
2. scan: a spec for the truth's 20 subjects (keys: e-mails lower-cased, user ids exact; needles: the
   first ASCII letter/digit run of each e-mail's local part, each user id's longest run); every
   expected row must be a candidate (recall), extras are counted; file lines must add up;
   no identifier may appear on the job's stderr;
3. rewrite: a clicks parquet file (delete), a sessions JSON file (redact note and actor.email) and a
   tickets CSV file whose every row is listed (delete: header only), read back with Spark: exactly
   the other rows, the same schema;
4. check: a misspelt column is reported in `missing`, a path that does not exist in `error`.
Prints the timing of every spark-submit; exits 1 on the first failed expectation.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
JOB = os.path.join(ROOT, "Sources/DSARCore/Connectors/Spark/dsar_spark_job.py")
PY = "/usr/bin/python3"
PLACEHOLDER = "[REDACTED]"


def spark_submit():
    import pyspark
    return os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")


def env():
    return dict(os.environ, PYSPARK_PYTHON=PY, SPARK_LOCAL_IP="127.0.0.1")


TIMINGS = []


def submit(label, *args):
    t0 = time.monotonic()
    p = subprocess.run([spark_submit(), "--master", "local[2]", *args], env=env(), capture_output=True, text=True)
    TIMINGS.append((label, time.monotonic() - t0))
    print(f"  spark-submit {label}: {TIMINGS[-1][1]:.1f} s, exit {p.returncode}")
    return p


def expect(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)
    print("ok   " + what)


def run_job(work, label, spec):
    spec = dict({"version": 1, "app_name": "dsar-selfcheck", "output": os.path.join(work, label + ".jsonl")}, **spec)
    path = os.path.join(work, label + ".spec.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f)
    p = submit(label, JOB, path)
    err = [x for x in p.stderr.splitlines() if x.startswith("DSAR-ERROR: ")]
    if p.returncode != 0 and not err:
        print(p.stderr[-2000:])
    expect(p.returncode == 0, f"{label}: exit 0 (last DSAR-ERROR: {err[-1] if err else '-'})")
    lines = [json.loads(x) for x in open(spec["output"], encoding="utf-8")]
    expect(lines and lines[-1]["t"] == "done", f"{label}: output ends with the done line")
    return lines, p.stderr


def tables(lake, erase=None):
    m = {"lower": "email", "exact": "user_id"}
    t = [{"name": "clicks", "path": f"{lake}/clicks", "format": "parquet",
          "match": [{"column": "user_id", "type": "user_id", "key": "exact"},
                    {"column": "email", "type": "email", "key": "lower"}], "text": [], "erase": "delete"},
         {"name": "sessions", "path": f"{lake}/sessions", "format": "json",
          "match": [{"column": "actor.email", "type": "email", "key": "lower"}], "text": ["note"],
          "erase": "redact", "redact": ["note", "actor.email"], "placeholder": PLACEHOLDER},
         {"name": "tickets_csv", "path": f"{lake}/tickets_csv", "format": "csv", "options": {"header": "true"},
          "match": [{"column": "email", "type": "email", "key": "lower"}], "text": ["body"], "erase": "delete"}]
    assert m
    return t


def keys_needles(subjects):
    keys, needles = [], []
    for s in subjects:
        keys += [{"kind": "lower", "value": s["email"].lower()}, {"kind": "exact", "value": s["user_id"]}]
        local_run = re.search(r"[0-9a-z]+", s["email"].split("@")[0].lower()).group(0)
        uid_run = max(re.findall(r"[0-9A-Za-z]+", s["user_id"]), key=len).lower()
        needles += [{"kind": "run", "value": local_run}, {"kind": "run", "value": uid_run}]
    return keys, needles


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dsar-spark-selfcheck-")
    lake = os.path.join(work, "lake")
    try:
        p = submit("make_lake", os.path.join(HERE, "make_lake.py"), lake, str(a.seed))
        expect(p.returncode == 0 and re.fullmatch(r"OK \d+\n", p.stdout), f"make_lake: prints only OK <rows> ({p.stdout.strip()!r})")
        truth = json.load(open(os.path.join(lake, "truth.json")))
        keys, needles = keys_needles(truth["subjects"])

        # 2. scan
        out, stderr = run_job(work, "scan", {"mode": "scan", "tables": tables(lake), "keys": keys, "needles": needles})
        leaked = [s for s in truth["subjects"] if s["email"].lower() in stderr.lower() or re.search(r"\b%s\b" % s["user_id"], stderr)]
        expect(not leaked, "scan: no identifier of the batch on the job's stderr")
        rows = [x for x in out if x["t"] == "row"]
        for t in ("clicks", "sessions", "tickets_csv"):
            got = {int(x["row"]["rid"]) for x in rows if x["table"] == t}
            want = {r for rids in truth["expected"][t].values() for r in rids}
            expect(want <= got, f"scan {t}: all {len(want)} expected rows are candidates ({len(got - want)} extra candidates)")
            files = [x for x in out if x["t"] == "file" and x["table"] == t]
            expect(sum(f["rows"] for f in files) == truth["rows"][t] and all(f["corrupt"] == 0 and f["bytes"] > 0 for f in files),
                   f"scan {t}: {len(files)} file lines, rows add up to {truth['rows'][t]}, no corrupt row")
        clicks_row = next(x for x in rows if x["table"] == "clicks")
        expect(set(clicks_row["row"]) <= {"rid", "user_id", "email", "url", "dt"} and "dt" in clicks_row["row"]
               and set(clicks_row["values"]) == {"user_id", "email"}, "scan: row holds the partition column, values the match columns")
        s_row = next(x for x in rows if x["table"] == "sessions")
        expect(isinstance(s_row["row"].get("actor"), dict) and set(s_row["values"]) == {"actor.email", "note"},
               "scan: nested actor stays nested in row, values has actor.email and note")

        # 3. rewrite: the expected (confirmed) rows of one file per table
        confirmed = {t: {r for rids in truth["expected"][t].values() for r in rids} for t in truth["expected"]}

        def pick(t):
            by_file = {}
            for x in rows:
                if x["table"] == t and int(x["row"]["rid"]) in confirmed[t]:
                    by_file.setdefault(x["file"], []).append(x)
            f = max(sorted(by_file), key=lambda k: len(by_file[k]))
            return f, by_file[f]

        from pyspark.sql import SparkSession
        from pyspark.sql import functions as F
        os.environ.update(env())
        spark = (SparkSession.builder.master("local[2]").appName("selfcheck").config("spark.ui.enabled", "false")
                 .config("spark.sql.shuffle.partitions", "4").config("spark.ui.showConsoleProgress", "false")
                 .config("spark.sql.session.timeZone", "UTC").getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        # every row of one CSV file, fingerprinted here the way the contract defines fp
        tk = spark.read.option("header", "true").csv(f"{lake}/tickets_csv")
        tk = tk.select(F.input_file_name().alias("f"), F.sha2(F.to_json(F.struct(*tk.columns)), 256).alias("fp"))
        csv_file = sorted({r.f for r in tk.collect()})[0]
        csv_fps = [r.fp for r in tk.where(F.col("f") == csv_file).collect()]
        entries = []
        plan = {}
        for t in ("clicks", "sessions"):
            f, hits = pick(t)
            plan[t] = (f, {int(h["row"]["rid"]) for h in hits})
            entries.append({"table": t, "file": f, "rows": [h["fp"] for h in hits],
                            "stage": f.rsplit("/", 1)[0].replace("file://", "") + "/.dsar-stage-selfcheck"})
        entries.append({"table": "tickets_csv", "file": csv_file, "rows": csv_fps,
                        "stage": csv_file.rsplit("/", 1)[0].replace("file://", "") + "/.dsar-stage-selfcheck"})
        spark.stop()
        out, _ = run_job(work, "rewrite", {"mode": "rewrite", "tables": tables(lake), "keys": keys, "needles": needles,
                                           "rewrite": entries})
        staged = {x["table"]: x for x in out if x["t"] == "staged"}
        expect(set(staged) == {"clicks", "sessions", "tickets_csv"}, "rewrite: one staged line per entry")
        spark = SparkSession.builder.getOrCreate()

        def local(u):
            return u.replace("file://", "")

        for t, fmt in (("clicks", "parquet"), ("sessions", "json"), ("tickets_csv", "csv")):
            st = staged[t]
            expect(os.path.isfile(st["part"]) and os.path.dirname(st["part"]) == st["stage"].rstrip("/"),
                   f"rewrite {t}: part is a file in the stage dir")
            orig = spark.read.format(fmt).option("header", "true").load(local(st["file"]))
            new = spark.read.format(fmt).option("header", "true").load(st["part"])
            expect(orig.schema == new.schema, f"rewrite {t}: same schema ({orig.schema.simpleString()})")
            before = {r.rid: r.asDict(recursive=True) for r in orig.collect()}
            after = {r.rid: r.asDict(recursive=True) for r in new.collect()}
            if t == "tickets_csv":
                expect(after == {} and open(st["part"]).read() == "rid,customer,email,body\n"
                       and st["matched"] == len(before) and st["rows_after"] == 0,
                       f"rewrite {t}: every row deleted leaves the header only ({len(before)} rows matched)")
                continue
            listed = plan[t][1]
            expect(st["rows_before"] == len(before) and st["matched"] == len(listed), f"rewrite {t}: counts {st['rows_before']} / {st['matched']}")
            if t == "clicks":
                want = {k: v for k, v in before.items() if k not in listed}
                expect(after == want and st["rows_after"] == len(want), f"rewrite {t}: exactly the other {len(want)} rows remain")
            else:
                want = {}
                for k, v in before.items():
                    if k in listed:
                        v = dict(v, note=PLACEHOLDER, actor=dict(v["actor"], email=PLACEHOLDER))
                    want[k] = v
                expect(after == want, f"rewrite {t}: {len(listed)} rows redacted, the other {len(want) - len(listed)} unchanged")
        spark.stop()

        # 4. check
        bad = tables(lake)
        bad[0]["match"][1]["column"] = "emial"
        bad[2]["path"] = f"{lake}/no_such_table"
        out, _ = run_job(work, "check", {"mode": "check", "tables": bad, "keys": [], "needles": []})
        c = {x["table"]: x for x in out if x["t"] == "check"}
        expect(c["clicks"]["missing"] == ["emial"] and c["clicks"]["partitions"] == ["dt"] and c["clicks"]["rows"] == 3000
               and c["clicks"]["files"] == 9 and c["clicks"]["error"] is None, f"check clicks: missing {c['clicks']['missing']}")
        expect("actor.email" in c["sessions"]["columns"] and c["sessions"]["missing"] == [], "check sessions: nested columns listed")
        expect(c["tickets_csv"]["error"] and "no_such_table" in c["tickets_csv"]["error"],
               f"check tickets_csv: error {c['tickets_csv']['error']!r}")
        print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS))
        print("SELFCHECK OK")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("kept " + work)


if __name__ == "__main__":
    main()
