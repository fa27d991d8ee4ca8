"""Test lake for dsar's `type: spark` connector (issue 19), written with Spark itself.

    spark-submit --master local[2] Tests/Fixtures/spark/make_lake.py OUTDIR SEED

Writes, deterministically from SEED:
- OUTDIR/clicks/       parquet, partitioned by dt (3 days, 3 files each): rid, user_id, email, url, dt
- OUTDIR/sessions/     JSON lines (2 files): rid, actor {email, name}, note
- OUTDIR/tickets_csv/  CSV with header (2 files): rid, customer, email, body
- OUTDIR/truth.json    the 20 subjects, the rules assumed (`rules`), the expected rids per table and
                       subject (keyed by the subject's lower-case e-mail) and the near misses placed.
rids are unique across the tables. Expected rows follow dsar's rules: a `match` column equal to
the subject's user id (exact) or e-mail (case-insensitive); an e-mail (case-insensitive) or user-id
token in a `text` column, on token boundaries. Near misses that must NOT match: the e-mail in
another case in a column that is neither match nor text, user ids that are a prefix or an extension
of a subject's (`u104`, `u10420`), `.co` for `.com`, and the e-mail inside a longer token
(`xalice@example.com`). Prints only `OK <rows>`.
"""

import json
import os
import random
import re
import sys

from pyspark.sql import SparkSession
from pyspark.sql import types as T

FIRST = "alice bruno chiara dmitri elena farid greta hugo ines jonas kira luca mara nils olga piet rosa sven tara umar".split()
LAST = "moreau keller rossi ivanov garcia haddad berg santos costa weber".split()
WORDS = ("order refund invoice delivery late broken thanks please call back account password reset shipping "
         "address changed payment failed card label return box damaged item size colour wrong").split()
DAYS = ["2026-11-10", "2026-11-11", "2026-11-12"]
RULES = {"clicks": {"match": {"user_id": "user_id", "email": "email"}, "text": []},
         "sessions": {"match": {"actor.email": "email"}, "text": ["note"]},
         "tickets_csv": {"match": {"email": "email"}, "text": ["body"]}}
TOKEN_STRIP = "<>(),;\"'"


def mixed_case(rng, s):
    return "".join(c.upper() if rng.random() < 0.4 else c for c in s)


def text_hits(text, by_email, by_uid):
    """Subjects whose e-mail or user id is a whitespace token of `text` (the generator puts
    identifiers only between spaces, `<>`, `()`, `,` and a sentence-final `.`)."""
    hits = set()
    for tok in text.split():
        tok = tok.strip(TOKEN_STRIP)
        if tok.endswith(".") and "@" in tok:
            tok = tok.rstrip(".")
        if tok.lower() in by_email:
            hits.add(by_email[tok.lower()])
        if tok in by_uid:
            hits.add(by_uid[tok])
    return hits


def main(out, seed):
    rng = random.Random(seed)
    subjects = []
    for k in range(20):
        first, last = FIRST[k], rng.choice(LAST)
        subjects.append({"email": f"{first}.{last}{rng.randint(1, 99)}@example.com",
                         "user_id": f"u{1000 + k * 37 + rng.randint(0, 30)}"})
    by_email = {s["email"]: s["email"] for s in subjects}
    by_uid = {s["user_id"]: s["email"] for s in subjects}
    near = []
    rid = [0]

    def next_rid():
        rid[0] += 1
        return rid[0]

    def other_email():
        return f"{rng.choice(FIRST)}{rng.randint(100, 999)}.{rng.choice(LAST)}@mail.test"

    def other_uid():
        return f"u{rng.randint(20000, 99999)}"

    def filler(n):
        return " ".join(rng.choice(WORDS) for _ in range(n))

    def near_email(s):
        local, domain = s["email"].split("@")
        return rng.choice([f"{local}@example.co", f"x{s['email']}", f"{local}@{domain}.evil.org"])

    def near_uid(s):
        return rng.choice([s["user_id"][:-1], s["user_id"] + "0"])

    def text_for(table, r):
        """Free text: a subject mentioned properly, a near miss, or nothing."""
        x, s = rng.random(), rng.choice(subjects)
        if x < 0.12:
            if rng.random() < 0.7:
                ident, form = mixed_case(rng, s["email"]), rng.choice(["<{}>", "({})", "{},", "{}.", "{}"])
            else:  # no sentence-final dot after a user id: `u1042.` is one token
                ident, form = s["user_id"], rng.choice(["<{}>", "({})", "{},", "{}"])
            return f"{filler(3)} {form.format(ident)} {filler(2)}"
        if x < 0.24:
            v = near_email(s) if rng.random() < 0.6 else near_uid(s)
            near.append({"table": table, "rid": r, "kind": "text", "value": v})
            return f"{filler(2)} {v} {filler(3)}"
        return f"{filler(4)} ref {rng.randint(1000000, 99999999)} {filler(2)}"

    clicks, sessions, tickets = [], [], []
    for _ in range(3000):
        r, x = next_rid(), rng.random()
        s = rng.choice(subjects)
        uid, email, url = other_uid(), other_email(), f"https://shop.example/p/{rng.randint(1, 500)}"
        if x < 0.08:
            uid, email = s["user_id"], mixed_case(rng, s["email"])
        elif x < 0.11:
            uid, email = s["user_id"], None
        elif x < 0.14:
            uid, email = None, mixed_case(rng, s["email"])
        elif x < 0.20:
            email = near_email(s)
            near.append({"table": "clicks", "rid": r, "kind": "email", "value": email})
        elif x < 0.25:
            uid = near_uid(s)
            near.append({"table": "clicks", "rid": r, "kind": "user_id", "value": uid})
        elif x < 0.28:
            url = f"https://shop.example/?ref={mixed_case(rng, s['email'])}"
            near.append({"table": "clicks", "rid": r, "kind": "url", "value": url})
        clicks.append((r, uid, email, url, DAYS[r % 3]))
    for _ in range(1200):
        r, x = next_rid(), rng.random()
        s = rng.choice(subjects)
        email, name = other_email(), f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}"
        if x < 0.10:
            email = mixed_case(rng, s["email"])
        elif x < 0.15:
            email = near_email(s)
            near.append({"table": "sessions", "rid": r, "kind": "actor.email", "value": email})
        elif x < 0.18:
            name = s["email"].upper()
            near.append({"table": "sessions", "rid": r, "kind": "actor.name", "value": name})
        sessions.append((r, (email, name), text_for("sessions", r)))
    for _ in range(600):
        r, x = next_rid(), rng.random()
        s = rng.choice(subjects)
        email, customer = other_email(), f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}"
        if x < 0.10:
            email = mixed_case(rng, s["email"])
        elif x < 0.15:
            email = near_email(s)
            near.append({"table": "tickets_csv", "rid": r, "kind": "email", "value": email})
        elif x < 0.18:
            customer = mixed_case(rng, s["email"])
            near.append({"table": "tickets_csv", "rid": r, "kind": "customer", "value": customer})
        body = text_for("tickets_csv", r).replace(" ref ", ', "ref" ', 1)  # commas and quotes for the CSV
        tickets.append((r, customer, email, body))

    expected = {t: {s["email"]: [] for s in subjects} for t in RULES}
    for r, uid, email, _, _ in clicks:
        hit = ({by_uid[uid]} if uid in by_uid else set()) | ({email.lower()} if email and email.lower() in by_email else set())
        for e in hit:
            expected["clicks"][e].append(r)
    for r, (email, _), note in sessions:
        hit = ({email.lower()} if email.lower() in by_email else set()) | text_hits(note, by_email, by_uid)
        for e in hit:
            expected["sessions"][e].append(r)
    for r, _, email, body in tickets:
        hit = ({email.lower()} if email.lower() in by_email else set()) | text_hits(body, by_email, by_uid)
        for e in hit:
            expected["tickets_csv"][e].append(r)

    spark = (SparkSession.builder.appName("dsar-make-lake").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", "4").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    s_clicks = "rid int, user_id string, email string, url string, dt string"
    spark.createDataFrame(clicks, s_clicks).repartition(3).write.partitionBy("dt").parquet(os.path.join(out, "clicks"))
    s_sessions = T.StructType([T.StructField("rid", T.IntegerType()),
                               T.StructField("actor", T.StructType([T.StructField("email", T.StringType()),
                                                                    T.StructField("name", T.StringType())])),
                               T.StructField("note", T.StringType())])
    spark.createDataFrame(sessions, s_sessions).repartition(2).write.json(os.path.join(out, "sessions"))
    spark.createDataFrame(tickets, "rid int, customer string, email string, body string").repartition(2) \
        .write.option("header", "true").csv(os.path.join(out, "tickets_csv"))
    spark.stop()
    assert not any(re.search(r"\s", s["email"]) for s in subjects)
    truth = {"seed": seed, "subjects": subjects, "rules": RULES, "expected": expected, "near_misses": near,
             "rows": {"clicks": len(clicks), "sessions": len(sessions), "tickets_csv": len(tickets)}}
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1, sort_keys=True)
    print(f"OK {len(clicks) + len(sessions) + len(tickets)}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: make_lake.py OUTDIR SEED")
    main(sys.argv[1], int(sys.argv[2]))
