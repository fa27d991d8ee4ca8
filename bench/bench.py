#!/usr/bin/env python3
"""dsar benchmark driver (Python 3, standard library only).

    python3 bench/bench.py --mb 200 --runs 3 --bin .build-release/release/dsar [--profile]

1. generates a deterministic (seeded) corpus under bench/out/corpus: nginx access logs with one gzip
   rotation, a JSON-lines app log, a CSV export and a pg_dump plain-format dump (COPY blocks), plus
   request batches of 1, 100, 1000 and 10000 subjects and connector configs pointing at the corpus;
2. times `dsar run --settle 0` on a fresh spool per run for each batch, and the baselines over the
   same files (`rg -z -F -f ids.txt`, `wc -l`), plus sealing (dsar vs `bsdtar --format zip | age`);
3. prints one table and writes it, with the machine and the targets, to bench/RESULTS.md.

See bench/README.md for what every number means.
"""

import argparse
import datetime
import gzip
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, "out")
MiB = 1 << 20

GEN_VERSION = 4            # bump when the generator's output changes (4: ids-b<N>.txt per batch)
BATCHES = [1, 100, 1000, 10000]
RG_BATCH = 1000            # the batch whose identifiers are ids.txt (the profile's batch is PROFILE_BATCHES)
PROFILE_BATCHES = [1, 1000]  # profiled on a 20 MiB corpus with PROFILE=1
PROFILE_MB = 20
SLOW_RUN_S = 300.0         # a measurement whose first run exceeds this is not repeated
SEAL_CSV_MB = 10           # CSV size for the sealing run; dsar's bundle then holds ~50 MiB of files

# Share of the corpus (uncompressed bytes) per file.
SHARES = [("logs/access.log", 0.30), ("logs/access.log.1", 0.15), ("logs/app-2026-11.jsonl", 0.25),
          ("export/support-tickets.csv", 0.10), ("db/shop-2026-11-28.sql", 0.20)]

FIRST = ("anna ben carla david emma felix greta hannah ivan julia karl lena marco nina oscar paula "
         "quentin rosa stefan tina uwe vera walter yusuf zoe alice bob carol dan erin frank gina "
         "henry iris jack kate liam maria noah olga peter rita sam tom ursula victor wendy").split()
LAST = ("mueller schmidt schneider fischer weber meyer wagner becker schulz hoffmann koch richter "
        "klein wolf neumann schwarz braun zimmermann krueger hartmann lange werner krause lehmann "
        "smith jones taylor brown williams wilson johnson davies robinson wright thompson evans "
        "walker white roberts green hall wood jackson clarke").split()
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "shop.example.org",
           "posteo.example", "web.example", "gmx.example", "outlook.example", "corp.example.net"]
COUNTRIES = ["DE", "AT", "CH", "FR", "NL", "GB", "IE", "ES", "IT", "PL", "SE", "DK"]
UAS = ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
       'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
       'Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0',
       'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
       'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36',
       'curl/8.5.0', 'Googlebot/2.1 (+http://www.google.com/bot.html)', 'kube-probe/1.30']
STATIC = ["/static/js/app.3f9a1c.js", "/static/css/main.77e0b2.css", "/static/img/logo.svg", "/favicon.ico",
          "/static/fonts/inter-var.woff2", "/static/js/vendor.c01d9e.js", "/robots.txt", "/"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
EVENTS = ["login", "logout", "view_product", "add_to_cart", "checkout", "payment_authorized",
          "password_reset_requested", "profile_updated", "search", "newsletter_opt_in"]
TICKET_SUBJECTS = ["Parcel not arrived", "Refund, please", "Wrong size delivered", "Change of address",
                   "Invoice copy", "Account locked", "\"Express\" shipping charged twice", "Cancel order"]
NOTES = ["customer called, promised callback", "refund issued, see order", "escalated to 2nd level",
         "waiting for carrier, \"tracking lost\"", "resolved", "asked for invoice copy; sent by mail",
         "duplicate of earlier ticket", "address changed\nnew: Hauptstr. 5, 10115 Berlin"]


# ----------------------------------------------------------------------------------------------
# Corpus generation
# ----------------------------------------------------------------------------------------------

class Universe:
    """Every user of the fictional shop: id, e-mail, IP, name; and the subjects of the requests."""

    def __init__(self, rng, n_users, n_subjects):
        self.n = n_users
        self.uid = [str(10_000_000 + i) for i in range(n_users)]   # 8 digits: no other 8-digit numbers
        self.first = [rng.choice(FIRST) for _ in range(n_users)]
        self.last = [rng.choice(LAST) for _ in range(n_users)]
        self.email = ["%s.%s%d@%s" % (self.first[i], self.last[i], i, rng.choice(DOMAINS)) for i in range(n_users)]
        self.ip = ["%d.%d.%d.%d" % (rng.randint(11, 223), rng.randrange(256), rng.randrange(256), rng.randint(1, 254))
                   for _ in range(n_users)]
        # The subjects of the 10000-batch, in order; smaller batches are prefixes (1 ⊂ 100 ⊂ 1000 ⊂ 10000).
        self.subjects = rng.sample(range(n_users), min(n_subjects, n_users))
        self.pos = {u: k for k, u in enumerate(self.subjects)}
        # Expected records per subject and connector (what an exact matcher must report).
        self.expected = {c: [0] * len(self.subjects) for c in ("web-logs", "app-events", "support-csv", "shop-db")}

    def hit(self, connector, users):
        for u in users:
            k = self.pos.get(u)
            if k is not None:
                self.expected[connector][k] += 1

    def email_variant(self, rng, u):
        """The user's e-mail, sometimes with capitals (still the same person: e-mails match case-insensitively)."""
        e = self.email[u]
        return e if rng.random() < 0.9 else e[0].upper() + e[1:].replace("@e", "@E")

    def near_miss_email(self, rng):
        e = self.email[rng.choice(self.subjects)]
        r = rng.random()
        if r < 0.4:
            return "x" + e                          # xanna.koch12@… is not anna.koch12@…
        if r < 0.8:
            return e + ".evil.example"              # a longer domain is another address
        local, dom = e.split("@")
        return local + "0@" + dom                   # one more digit

    def near_miss_uid(self, rng):
        u = self.uid[rng.choice(self.subjects)]
        return (u + str(rng.randrange(10))) if rng.random() < 0.5 else ("1" + u)   # 9 digits: never a user id


class Writer:
    """Buffered file writer that counts bytes."""

    def __init__(self, path, gz=False):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        raw = open(path, "wb")
        self.raw = raw
        self.f = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) if gz else raw
        self.buf = []
        self.size = 0
        self.pending = 0

    def write(self, s):
        self.buf.append(s)
        self.pending += len(s)          # ASCII almost everywhere; exact size is taken from the file
        if self.pending > 1 << 20:
            self.flush()

    def flush(self):
        b = "".join(self.buf).encode()
        self.f.write(b)
        self.size += len(b)
        self.buf, self.pending = [], 0

    def close(self):
        self.flush()
        if self.f is not self.raw:
            self.f.close()
        self.raw.close()

    def written(self):
        return self.size + self.pending


def clf_time(t):
    tm = time.gmtime(t)
    return "%02d/%s/%04d:%02d:%02d:%02d +0000" % (tm.tm_mday, MONTHS[tm.tm_mon - 1], tm.tm_year, tm.tm_hour, tm.tm_min, tm.tm_sec)


def gen_access_log(rng, U, w, target, t0):
    """nginx combined format. ~60 % anonymous, ~33 % with a user id / e-mail, ~2 % near misses."""
    t, ts_cache, ts_str = t0, -1, ""
    methods = ["GET"] * 8 + ["POST", "PUT"]
    while w.written() < target:
        if rng.random() < 0.4:
            t += 1
        if t != ts_cache:
            ts_cache, ts_str = t, clf_time(t)
        r = rng.random()
        users = ()
        ruser = "-"
        ref = "-"
        if r < 0.60:                                   # anonymous browsing, assets, products
            ip = "%d.%d.%d.%d" % (rng.randint(11, 223), rng.randrange(256), rng.randrange(256), rng.randint(1, 254))
            path = rng.choice(STATIC) if rng.random() < 0.6 else "/products/%d-%s" % (rng.randrange(20000), rng.choice(LAST))
            ref = "https://shop.example.com/" if rng.random() < 0.3 else "-"
        elif r < 0.86:                                 # logged-in user: id in the path or the query
            u = rng.randrange(U.n)
            users = (u,)
            ip = U.ip[u]
            k = rng.random()
            if k < 0.4:
                path = "/api/v1/users/%s/orders?page=%d" % (U.uid[u], rng.randint(1, 9))
            elif k < 0.7:
                path = "/orders?user=%s&sort=date" % U.uid[u]
            else:
                path = "/account/%s/settings" % U.uid[u]
                ref = "https://shop.example.com/account/%s" % U.uid[u]
        elif r < 0.93:                                 # e-mail in the query string (URL-encoded) or as remote user
            u = rng.randrange(U.n)
            users = (u,)
            ip = U.ip[u]
            if rng.random() < 0.6:
                path = "/newsletter/confirm?email=%s&token=%08x" % (U.email_variant(rng, u).replace("@", "%40"), rng.getrandbits(32))
            else:
                ruser = U.email_variant(rng, u)
                path = "/admin/export"
        elif r < 0.95:                                 # near misses of subjects
            ip = "%d.%d.%d.%d" % (rng.randint(11, 223), rng.randrange(256), rng.randrange(256), rng.randint(1, 254))
            if rng.random() < 0.5:
                path = "/orders?user=%s" % U.near_miss_uid(rng)
            else:
                path = "/newsletter/confirm?email=%s" % U.near_miss_email(rng).replace("@", "%40")
        else:                                          # health checks and bots
            ip = "10.0.%d.%d" % (rng.randrange(4), rng.randint(1, 254))
            path = "/healthz"
        status = 200 if rng.random() < 0.85 else rng.choice((301, 302, 304, 400, 403, 404, 500))
        w.write('%s - %s [%s] "%s %s HTTP/1.1" %d %d "%s" "%s"\n' % (
            ip, ruser, ts_str, rng.choice(methods), path, status, rng.randrange(60000), ref, rng.choice(UAS)))
        U.hit("web-logs", users)


def gen_app_log(rng, U, w, target, t0):
    """JSON lines; user_id and actor.email always belong to the same user; ~0.5 % non-JSON lines."""
    t = t0 * 1000
    while w.written() < target:
        t += rng.randrange(40)
        tm = time.gmtime(t // 1000)
        ts = "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, t % 1000)
        r = rng.random()
        if r < 0.005:
            w.write("%s WARN [pool-%d-thread-%d] connection reset by peer, retrying in %d ms\n" % (
                ts, rng.randint(1, 4), rng.randint(1, 16), rng.choice((50, 100, 200))))
            continue
        if r < 0.30:                                   # system events: no person
            w.write('{"ts":"%s","level":"info","service":"%s","event":"%s","duration_ms":%d,"host":"app-%d"}\n' % (
                ts, rng.choice(("worker", "scheduler", "cache")), rng.choice(("cache_warmed", "job_finished", "index_rebuilt")),
                rng.randrange(5000), rng.randint(1, 6)))
            continue
        if r < 0.32:                                   # near misses: both fields of a non-user
            w.write('{"ts":"%s","level":"warn","service":"api","event":"login_failed","user_id":"%s","actor":{"email":"%s"},"ip":"%s"}\n' % (
                ts, U.near_miss_uid(rng), U.near_miss_email(rng), "198.51.100.%d" % rng.randint(1, 254)))
            continue
        u = rng.randrange(U.n)
        ev = rng.choice(EVENTS)
        uid = U.uid[u] if rng.random() < 0.8 else int(U.uid[u])   # sometimes a JSON number
        uid_json = '"%s"' % uid if isinstance(uid, str) else str(uid)
        k = rng.random()
        if k < 0.5:
            actor = ',"actor":{"email":"%s","role":"customer"}' % U.email_variant(rng, u)
        elif k < 0.6:
            actor = ',"actor":{"email":"%s","role":"customer"},"message":"reset link sent to %s"' % (U.email[u], U.email[u])
        else:
            actor = ""
        w.write('{"ts":"%s","level":"info","service":"api","event":"%s","user_id":%s%s,"ip":"%s","request_id":"%016x","latency_ms":%d}\n' % (
            ts, ev, uid_json, actor, U.ip[u], rng.getrandbits(64), rng.randrange(900)))
        U.hit("app-events", (u,))


def csv_field(s):
    if any(c in s for c in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


def gen_csv(rng, U, w, target):
    """Support-ticket export (RFC 4180, header row); notes sometimes quote another user's e-mail."""
    w.write("ticket_id,created_at,user_id,email,channel,subject,status,notes\r\n")
    tid = 700_000_000
    while w.written() < target:
        tid += 1
        created = "2026-%02d-%02dT%02d:%02d:00Z" % (rng.randint(1, 11), rng.randint(1, 28), rng.randrange(24), rng.randrange(60))
        channel = rng.choice(("email", "phone", "chat", "web"))
        status = rng.choice(("open", "closed", "closed", "pending"))
        if rng.random() < 0.02:                        # near-miss row
            uid, email, users = U.near_miss_uid(rng), U.near_miss_email(rng), set()
        else:
            u = rng.randrange(U.n)
            uid, email, users = U.uid[u], U.email_variant(rng, u), {u}
        k = rng.random()
        if k < 0.45:
            notes = ""
        elif k < 0.9:
            notes = rng.choice(NOTES)
        elif k < 0.97:                                 # free text mentioning another person
            v = rng.randrange(U.n)
            notes = "customer asked to forward the invoice to %s, ok per phone" % U.email[v]
            users.add(v)
        else:
            notes = "not the same person as %s (checked)" % U.near_miss_email(rng)
        w.write("%d,%s,%s,%s,%s,%s,%s,%s\r\n" % (tid, created, uid, email, channel, csv_field(rng.choice(TICKET_SUBJECTS)),
                                                 status, csv_field(notes)))
        U.hit("support-csv", users)


def pg_text(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def gen_dump(rng, U, w, target):
    """pg_dump plain format: customers (every user + near-miss customers), orders (the rest of the bytes)."""
    w.write("--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15.10\n-- Dumped by pg_dump version 15.10\n\n"
            "SET statement_timeout = 0;\nSET lock_timeout = 0;\nSET client_encoding = 'UTF8';\n"
            "SET standard_conforming_strings = on;\nSELECT pg_catalog.set_config('search_path', '', false);\n"
            "SET check_function_bodies = false;\n\nSET default_tablespace = '';\n\n")
    w.write("CREATE TABLE public.customers (\n    id integer NOT NULL,\n    email text NOT NULL,\n    name text,\n"
            "    phone text,\n    country character(2),\n    created_at timestamp with time zone\n);\n\n\n"
            "ALTER TABLE public.customers OWNER TO shop;\n\n")
    w.write("CREATE TABLE public.orders (\n    id bigint NOT NULL,\n    customer_id integer NOT NULL,\n"
            "    total numeric(10,2),\n    currency character(3),\n    status text,\n    created_at timestamp with time zone,\n"
            "    shipping_note text\n);\n\n\nALTER TABLE public.orders OWNER TO shop;\n\n")
    w.write("--\n-- Data for Name: customers; Type: TABLE DATA; Schema: public; Owner: shop\n--\n\n"
            "COPY public.customers (id, email, name, phone, country, created_at) FROM stdin;\n")
    extra_ids = []
    for u in range(U.n):
        name = "%s %s" % (U.first[u].capitalize(), U.last[u].capitalize())
        if rng.random() < 0.03:
            name = name.replace("o", "ö", 1) if "o" in name else name + " O'Neil"
        phone = "\\N" if rng.random() < 0.3 else "+49 30 %d %04d" % (rng.randint(100, 999), rng.randrange(10000))
        w.write("%s\t%s\t%s\t%s\t%s\t2025-%02d-%02d %02d:%02d:00+00\n" % (
            U.uid[u], U.email[u], pg_text(name), phone, rng.choice(COUNTRIES), rng.randint(1, 12), rng.randint(1, 28),
            rng.randrange(24), rng.randrange(60)))
        U.hit("shop-db", (u,))
        if rng.random() < 0.01:                        # near-miss customer: an address close to a subject's
            cid = str(10_000_000 + U.n + len(extra_ids))
            extra_ids.append(cid)
            w.write("%s\t%s\tMallory Near\t\\N\tGB\t2025-06-01 12:00:00+00\n" % (cid, U.near_miss_email(rng)))
    w.write("\\.\n\n\n--\n-- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: shop\n--\n\n"
            "COPY public.orders (id, customer_id, total, currency, status, created_at, shipping_note) FROM stdin;\n")
    oid = 500_000_000
    tail = "\\.\n\n\nALTER TABLE ONLY public.customers\n    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);\n\n" \
           "ALTER TABLE ONLY public.orders\n    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);\n\n" \
           "--\n-- PostgreSQL database dump complete\n--\n\n"
    while w.written() < target - len(tail):
        oid += 1
        if extra_ids and rng.random() < 0.01:
            cid, users = rng.choice(extra_ids), ()
        else:
            u = rng.randrange(U.n)
            cid, users = U.uid[u], (u,)
        k = rng.random()
        note = "\\N" if k < 0.7 else pg_text(rng.choice(("leave at the door", "gift wrap\tplease", "ring twice\nback door",
                                                          "C:\\temp is not an address", "Packstation 123")))
        w.write("%d\t%s\t%d.%02d\tEUR\t%s\t2026-%02d-%02d %02d:%02d:%02d+00\t%s\n" % (
            oid, cid, rng.randrange(500), rng.randrange(100), rng.choice(("paid", "shipped", "delivered", "refunded")),
            rng.randint(1, 11), rng.randint(1, 28), rng.randrange(24), rng.randrange(60), rng.randrange(60), note))
        U.hit("shop-db", users)
    w.write(tail)


CONNECTORS = {
    "web-logs.yaml": """# nginx access logs with a gzip rotation (generated by bench/bench.py)
name: web-logs
type: log
paths: [ {corpus}/logs/access.log* ]
format: text
match: [ email, user_id ]
description: Web server access logs
category: technical usage data
purpose: security and troubleshooting
retention: 14 days
erase: redact
""",
    "app-events.yaml": """# JSON-lines application log (generated by bench/bench.py)
name: app-events
type: log
paths: [ {corpus}/logs/app-*.jsonl ]
format: jsonl
fields: { user_id: user_id, "actor.email": email }
description: Application event log
category: account activity
purpose: providing and securing the service
retention: 90 days
erase: drop_line
""",
    "support-csv.yaml": """# Support ticket export (generated by bench/bench.py)
name: support-csv
type: csv
paths: [ {corpus}/export/support-tickets.csv ]
delimiter: ","
header: true
columns: { email: email, user_id: user_id }
text: [ notes ]
description: Support tickets
category: contact history
purpose: customer support
retention: 3 years
erase: delete
""",
    "shop-db.yaml": """# PostgreSQL web-shop dump (generated by bench/bench.py)
name: shop-db
type: sqldump
paths: [ {corpus}/db/shop-*.sql ]
dialect: postgres
description: Web shop database, nightly dump
category: customer account and orders
purpose: order fulfilment
retention: invoices kept 10 years (tax law)
tables:
  customers: { match: { email: email, id: user_id }, erase: delete }
  orders:    { match: { customer_id: user_id }, erase: retain, reason: "invoices, tax law" }
""",
}

SEAL_CONNECTOR = """# Sealing benchmark: every row of this CSV belongs to the one subject (generated by bench/bench.py)
name: seal-events
type: csv
paths: [ {data}/seal-events.csv ]
delimiter: ","
header: true
columns: { email: email, user_id: user_id }
description: Clickstream export
category: usage data
purpose: analytics
retention: 1 year
erase: delete
"""
SEAL_EMAIL, SEAL_UID = "sealed.subject@example.com", "99999999"


def request_json(batch, k, email, uid):
    return json.dumps({"request_id": "BENCH-%d-%05d" % (batch, k), "action": "export",
                       "subject": {"email": email, "user_id": uid}}) + "\n"


def generate(base, mb, seed, batches):
    """Writes corpus/, connectors/, requests/b<N>/, ids-b<N>.txt, ids.txt and corpus.json under base (skipped if up
    to date)."""
    meta_path = os.path.join(base, "corpus.json")
    want = {"gen_version": GEN_VERSION, "mb": mb, "seed": seed, "batches": batches, "seal_csv_mb": SEAL_CSV_MB}
    if os.path.exists(meta_path):
        try:
            meta = json.load(open(meta_path))
            if meta.get("params") == want and all(os.path.exists(f["path"]) for f in meta["files"]):
                print("corpus: %s is up to date (seed %d, %d MiB)" % (base, seed, mb), flush=True)
                return meta
        except (ValueError, KeyError):
            pass
    for d in ("corpus", "connectors", "requests", "seal"):
        shutil.rmtree(os.path.join(base, d), ignore_errors=True)
    if os.path.exists(meta_path):
        os.unlink(meta_path)
    t_start = time.time()
    rng = random.Random(seed)
    total = mb * MiB
    n_users = max(12_000, mb * 250)
    U = Universe(rng, n_users, max(batches))
    corpus = os.path.join(base, "corpus")
    t0 = 1795737600                                    # 2026-11-27T00:00:00Z; the rotation is a week older
    files = []
    for rel, share in SHARES:
        target = int(total * share)
        gz = rel == "logs/access.log.1"
        path = os.path.join(corpus, rel + (".gz" if gz else ""))
        print("corpus: writing %s (%d MiB%s)" % (os.path.relpath(path, ROOT), target // MiB, ", gzip" if gz else ""), flush=True)
        w = Writer(path, gz=gz)
        frng = random.Random("%d:%s" % (seed, rel))    # per-file stream: one file's change leaves the others alone
        if rel == "logs/access.log":
            gen_access_log(frng, U, w, target, t0)
        elif rel == "logs/access.log.1":
            gen_access_log(frng, U, w, target, t0 - 7 * 86400)
        elif rel.endswith(".jsonl"):
            gen_app_log(frng, U, w, target, t0)
        elif rel.endswith(".csv"):
            gen_csv(frng, U, w, target)
        else:
            gen_dump(frng, U, w, target)
        w.close()
        files.append({"path": path, "logical_bytes": w.size, "disk_bytes": os.path.getsize(path), "gzip": gz})

    conn = os.path.join(base, "connectors")
    os.makedirs(conn)
    for name, text in CONNECTORS.items():
        with open(os.path.join(conn, name), "w") as f:
            f.write(text.replace("{corpus}", corpus))

    subjects = U.subjects
    for n in batches:
        d = os.path.join(base, "requests", "b%d" % n)
        os.makedirs(d)
        for k, u in enumerate(subjects[:n]):
            with open(os.path.join(d, "r%05d.json" % k), "w") as f:
                f.write(request_json(n, k, U.email[u], U.uid[u]))
    # rg's pattern list per batch: the e-mails and user ids of exactly that batch's subjects (ids-b<N>.txt);
    # ids.txt is the 1000-subject list, as before.
    for n, name in [(n, "ids-b%d.txt" % n) for n in batches] + [(RG_BATCH, "ids.txt")]:
        with open(os.path.join(base, name), "w") as f:
            for u in subjects[:min(n, len(subjects))]:
                f.write(U.email[u] + "\n" + U.uid[u] + "\n")

    # Sealing: one subject whose every row of a SEAL_CSV_MB CSV is theirs.
    seal = os.path.join(base, "seal")
    os.makedirs(os.path.join(seal, "data"))
    os.makedirs(os.path.join(seal, "connectors"))
    os.makedirs(os.path.join(seal, "requests"))
    srng = random.Random("%d:seal" % seed)
    w = Writer(os.path.join(seal, "data", "seal-events.csv"))
    w.write("event_id,user_id,email,ts,event,page,referrer,amount\r\n")
    eid = 900_000_000
    while w.written() < SEAL_CSV_MB * MiB:
        eid += 1
        w.write("%d,%s,%s,2026-%02d-%02dT%02d:%02d:%02dZ,%s,/products/%d-%s,%s,%d.%02d\r\n" % (
            eid, SEAL_UID, SEAL_EMAIL, srng.randint(1, 11), srng.randint(1, 28), srng.randrange(24), srng.randrange(60),
            srng.randrange(60), srng.choice(EVENTS), srng.randrange(20000), srng.choice(LAST),
            srng.choice(("https://www.google.example/", "-", "https://shop.example.com/")), srng.randrange(300), srng.randrange(100)))
    w.close()
    with open(os.path.join(seal, "connectors", "seal-events.yaml"), "w") as f:
        f.write(SEAL_CONNECTOR.replace("{data}", os.path.join(seal, "data")))
    with open(os.path.join(seal, "requests", "r00000.json"), "w") as f:
        f.write(request_json(1, 0, SEAL_EMAIL, SEAL_UID))

    expected = {}
    for n in batches:
        expected[str(n)] = {c: sum(v[:n]) for c, v in U.expected.items()}
    meta = {"params": want, "files": files, "users": n_users,
            "logical_bytes": sum(f["logical_bytes"] for f in files), "disk_bytes": sum(f["disk_bytes"] for f in files),
            "expected_records": expected,
            "expected_by_subject": {c: v[:min(100, len(v))] for c, v in U.expected.items()},
            "seal_csv_bytes": w.size, "generated_in_s": round(time.time() - t_start, 1)}
    with open(meta_path + ".tmp", "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(meta_path + ".tmp", meta_path)
    print("corpus: %.1f MiB (%.1f MiB on disk), %d users, generated in %.0f s" % (
        meta["logical_bytes"] / MiB, meta["disk_bytes"] / MiB, n_users, meta["generated_in_s"]), flush=True)
    return meta


# ----------------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------------

def parse_time_v(path):
    """(wall s, peak RSS KiB, exit code; -N when killed by signal N) from a `/usr/bin/time -v -o` report."""
    text = open(path, errors="replace").read()
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    wall = 0.0
    for p in m.group(1).split(":"):
        wall = wall * 60 + float(p)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    sig = re.search(r"Command terminated by signal (\d+)", text)
    code = -int(sig.group(1)) if sig else int(re.search(r"Exit status: (\d+)", text).group(1))
    return wall, rss, code


def children(pid):
    try:
        return [int(c) for c in open("/proc/%d/task/%d/children" % (pid, pid)).read().split()]
    except OSError:
        return []


def timed(cmd, logdir, tag, shell=False, ok_codes=(0,), timeout=None):
    """Runs cmd under /usr/bin/time -v; returns (wall s, peak RSS KiB, exit code, killed).

    With a timeout, the measured program (the child of /usr/bin/time, which we started) is sent SIGKILL
    when the time is up; /usr/bin/time still reports its wall time and peak RSS up to then."""
    os.makedirs(logdir, exist_ok=True)
    tfile = os.path.join(logdir, tag + ".time")
    argv = ["/usr/bin/time", "-v", "-o", tfile] + (["sh", "-c", cmd] if shell else cmd)
    killed = False
    with open(os.path.join(logdir, tag + ".out"), "wb") as out, open(os.path.join(logdir, tag + ".err"), "wb") as err:
        p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            killed = True
            for c in children(p.pid):
                os.kill(c, signal.SIGKILL)
            p.wait()
    wall, rss, code = parse_time_v(tfile)
    if not killed and code not in ok_codes:
        tail = open(os.path.join(logdir, tag + ".err"), errors="replace").read()[-2000:]
        raise SystemExit("bench: %s exited %d\n%s" % (tag, code, tail))
    return wall, rss, code, killed


def run_ok(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit("bench: %s failed (%d): %s" % (" ".join(argv), r.returncode, r.stderr[-2000:]))
    return r.stdout


def fresh_spool(dsar, where, request_dir):
    """As Tests/DSARTestSupport initialize(): dsar init, dsar keygen --out, config.yaml = recipients line."""
    shutil.rmtree(where, ignore_errors=True)
    os.makedirs(where)
    spool, team = os.path.join(where, "spool"), os.path.join(where, "team-keys")
    run_ok([dsar, "init", "--spool", spool, "--log-format", "json"])
    run_ok([dsar, "keygen", "--out", team])
    recipient = open(os.path.join(team, "age.pub")).read().strip()
    cfg = os.path.join(spool, "config.yaml")
    with open(cfg + ".tmp", "w") as f:
        f.write("recipients: [ %s ]\n" % recipient)
    os.chmod(cfg + ".tmp", 0o640)
    os.replace(cfg + ".tmp", cfg)
    inbox = os.path.join(spool, "inbox")
    for name in sorted(os.listdir(request_dir)):
        shutil.copyfile(os.path.join(request_dir, name), os.path.join(inbox, name))
    return spool, team


def job_summary(dsar, spool):
    jobs = json.loads(run_ok([dsar, "status", "--json", "--spool", spool, "--log-format", "json"]))
    statuses, records, scanned, durations = {}, {}, {}, {}
    for j in jobs:
        statuses[j["status"]] = statuses.get(j["status"], 0) + 1
        for c in j.get("connectors", []):
            records[c["name"]] = records.get(c["name"], 0) + int(c.get("records", 0))
            b = int(c.get("details", {}).get("bytes_scanned", 0))
            scanned[c["name"]] = max(scanned.get(c["name"], 0), b)
            durations[c["name"]] = max(durations.get(c["name"], 0), int(c.get("duration_ms", 0)))
    return {"jobs": len(jobs), "statuses": statuses, "records": records, "bytes_scanned": scanned, "duration_ms": durations}


def log_phases(errlog):
    """Where a dsar run spent its time, from its own JSON log (timestamps have 1 s resolution)."""
    first, last, count = {}, {}, {}
    t_start = None
    for line in open(errlog, errors="replace"):
        try:
            e = json.loads(line)
            t = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%SZ").timestamp()
        except (ValueError, KeyError):
            continue
        t_start = t if t_start is None else t_start
        m = e.get("message", "")
        first.setdefault(m, t)
        last[m] = t
        count[m] = count.get(m, 0) + 1
    ph = {"claimed": count.get("request claimed", 0), "sealed": count.get("bundle sealed", 0),
          "finished": count.get("job finished", 0)}
    if t_start is not None and "batch started" in first:
        ph["intake_s"] = first["batch started"] - t_start
        if "bundle sealed" in first:
            ph["search_s"] = first["bundle sealed"] - first["batch started"]
            ph["seal_s"] = last.get("job finished", last["bundle sealed"]) - first["bundle sealed"]
    return ph


def fmt_phases(ph):
    parts = ["%d claimed, %d sealed, %d finished" % (ph["claimed"], ph["sealed"], ph["finished"])]
    if "intake_s" in ph:
        parts.append("intake (start → batch started) %.0f s" % ph["intake_s"])
    if "search_s" in ph:
        parts.append("batch started → first bundle sealed %.0f s" % ph["search_s"])
        parts.append("first bundle sealed → last job finished %.0f s" % ph["seal_s"])
    return "; ".join(parts)


def warm(paths):
    for p in paths:
        with open(p, "rb") as f:
            while f.read(8 << 20):
                pass


class Measurement:
    def __init__(self, label, mbytes=None):
        self.label, self.mbytes = label, mbytes
        self.walls, self.rss = [], []
        self.note = ""
        self.killed = False        # a run hit BENCH_TIMEOUT: the numbers are bounds

    def add(self, wall, rss_kib):
        self.walls.append(wall)
        self.rss.append(rss_kib)

    @property
    def median(self):
        return statistics.median(self.walls)

    @property
    def peak_mib(self):
        return max(self.rss) / 1024


def repeat(m, runs, once):
    """Calls once(i) -> (wall, rss KiB, killed) up to runs times. A run killed at the timeout or a first run
    over SLOW_RUN_S is not repeated."""
    for i in range(runs):
        wall, rss, killed = once(i)
        m.add(wall, rss)
        print("  %-30s run %d/%d: %8.2f s  %7.1f MiB%s" % (m.label, i + 1, runs, wall, rss / 1024,
                                                          "  (killed at the timeout)" if killed else ""), flush=True)
        if killed:
            m.killed = True
            m.note = "killed after %.0f s (BENCH_TIMEOUT): wall time and RSS are lower bounds" % wall
            break
        if i == 0 and runs > 1 and wall > SLOW_RUN_S:
            m.note = "1 run only: the first took %.0f s (> %.0f s), repeats skipped" % (wall, SLOW_RUN_S)
            break
    if m.note:
        print("  %s" % m.note, flush=True)


def measure_dsar(dsar, base, n, runs, work, logs, checks, timeout):
    m = Measurement("dsar run %d subject%s" % (n, "" if n == 1 else "s"))
    req = os.path.join(base, "requests", "b%d" % n)
    conn = os.path.join(base, "connectors")

    def once(i):
        where = os.path.join(work, "b%d-%d" % (n, i))
        spool, _ = fresh_spool(dsar, where, req)
        tag = "dsar-b%d-run%d" % (n, i)
        wall, rss, code, killed = timed([dsar, "run", "--settle", "0", "--connectors", conn, "--spool", spool,
                                         "--log-format", "json"], logs, tag, timeout=timeout)
        ph = log_phases(os.path.join(logs, tag + ".err"))
        if killed:
            checks.setdefault(n, {"killed": True, "phases": ph})
        else:
            s = job_summary(dsar, spool)
            if s["jobs"] != n or s["statuses"].get("COMPLETED", 0) != n:
                raise SystemExit("bench: batch %d run %d: expected %d COMPLETED jobs, got %s (logs: %s)" % (
                    n, i, n, s["statuses"], logs))
            s["phases"] = ph
            checks.setdefault(n, s)
        shutil.rmtree(where, ignore_errors=True)
        return wall, rss, killed
    repeat(m, runs, once)
    if m.killed:
        m.note += "; at the kill: " + fmt_phases(checks[n]["phases"])
    return m


def measure_seal(dsar, base, runs, work, logs):
    """dsar run on the 1-request sealing batch, then bsdtar|age over exactly the files of its bundle."""
    seal = os.path.join(base, "seal")
    md = Measurement("sealing: dsar run (1 request)")
    content_dir = os.path.join(work, "seal-content")
    info = {}

    def once(i):
        where = os.path.join(work, "seal-%d" % i)
        spool, team = fresh_spool(dsar, where, os.path.join(seal, "requests"))
        wall, rss, _, _ = timed([dsar, "run", "--settle", "0", "--connectors", os.path.join(seal, "connectors"),
                                 "--spool", spool, "--log-format", "json"], logs, "seal-dsar-run%d" % i)
        s = job_summary(dsar, spool)
        if s["statuses"].get("COMPLETED", 0) != 1:
            raise SystemExit("bench: sealing run: job not COMPLETED: %s" % s["statuses"])
        if i == 0:
            outbox = os.path.join(spool, "outbox")
            entry = os.path.join(outbox, [e for e in os.listdir(outbox) if not e.startswith(".")][0])
            manifest = json.load(open(os.path.join(entry, "manifest.json")))
            info["content_bytes"] = sum(f["size"] for f in manifest["files"])
            info["files"] = [f["name"] for f in manifest["files"]]
            info["bundle_bytes"] = manifest["bundle"]["size"]
            info["records"] = s["records"]
            info["scan_ms"] = s["duration_ms"]
            # The same files, unencrypted, for the baseline (decrypted with the team key, unpacked).
            shutil.rmtree(content_dir, ignore_errors=True)
            os.makedirs(content_dir)
            zpath = os.path.join(work, "seal-bundle.zip")
            run_ok(["age", "-d", "-i", os.path.join(team, "age.key"), "-o", zpath, os.path.join(entry, "bundle.zip.age")])
            run_ok(["bsdtar", "-xf", zpath, "-C", content_dir])
            os.unlink(zpath)
            info["recipient"] = open(os.path.join(team, "age.pub")).read().strip()
        shutil.rmtree(where, ignore_errors=True)
        return wall, rss, False
    repeat(md, runs, once)
    md.mbytes = info["content_bytes"]

    mb = Measurement("sealing: bsdtar zip | age", info["content_bytes"])
    names = " ".join("'%s'" % n for n in info["files"])
    out = os.path.join(work, "seal-baseline.zip.age")
    warm([os.path.join(content_dir, n) for n in info["files"]])

    def once_b(i):
        cmd = "cd '%s' && bsdtar --format zip -cf - %s | age -r %s > '%s'" % (content_dir, names, info["recipient"], out)
        wall, rss, _, _ = timed(cmd, logs, "seal-bsdtar-age-run%d" % i, shell=True)
        info["baseline_bytes"] = os.path.getsize(out)
        os.unlink(out)
        return wall, rss, False
    repeat(mb, runs, once_b)
    shutil.rmtree(content_dir, ignore_errors=True)
    return md, mb, info


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------

def ratio(a, b):
    """a.median / b.median as (value, kind): kind 'exact', 'lower' (a was killed: at least this) or 'unknown'."""
    if b.killed:
        return None, "unknown"
    return a.median / b.median, ("lower" if a.killed else "exact")


def bookkeeping(m100, m1000):
    """(t(1000) − t(100)) / 900 in ms as (value, kind), like ratio(): what one more job costs."""
    if m100.killed:
        return None, "unknown"
    return (m1000.median - m100.median) / 900 * 1000, ("lower" if m1000.killed else "exact")


def fmt_ratio(r, against):
    v, kind = r
    if kind == "unknown":
        return "? (vs %s: both killed)" % against
    return "%s%.2f× %s" % ("≥ " if kind == "lower" else "", v, against)


def verdict(r, limit):
    v, kind = r
    if kind == "unknown":
        return "unknown"
    if v <= limit:
        return "yes" if kind == "exact" else "unknown"
    return "no"


def table(rows):
    """rows: (Measurement, ratio text). Returns (plain text, markdown)."""
    head = ["measurement", "runs", "median wall s", "min–max s", "MiB/s", "peak RSS MiB", "ratio vs baseline"]
    body = []
    for m, rtext in rows:
        lb = m.killed
        mibs = m.mbytes / MiB / m.median if m.median > 0 else float("inf")
        body.append([m.label, str(len(m.walls)) + ("*" if m.note else ""),
                     ("≥ %.0f" if lb else "%.2f") % m.median,
                     "killed" if lb else "%.2f–%.2f" % (min(m.walls), max(m.walls)),
                     ("≤ %.2f" if lb else "%.1f") % mibs, ("≥ %.1f" if lb else "%.1f") % m.peak_mib, rtext])
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    right = {1, 2, 3, 4, 5}

    def line(r):
        return "  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r))
    text = "\n".join([line(head), "  ".join("-" * w for w in widths)] + [line(r) for r in body])
    md = "\n".join(["| " + " | ".join(head) + " |",
                    "|" + "|".join(("---:" if i in right else "---") for i in range(len(head))) + "|"]
                   + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in body])
    return text, md


def machine():
    cpu = "unknown"
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            cpu = l.split(":", 1)[1].strip()
            break
    mem = "unknown"
    for l in open("/proc/meminfo"):
        if l.startswith("MemTotal"):
            mem = "%.1f GiB" % (int(l.split()[1]) / 1024 / 1024)
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem": mem, "kernel": platform.release(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def tool_version(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def git_state():
    """HEAD and whether the sources differ from it (read-only: no optional index refresh)."""
    head = tool_version(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "--no-optional-locks", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--",
                            "Sources", "Package.swift"], capture_output=True, text=True).stdout.strip()
    return head + (" + uncommitted changes in Sources" if dirty else "")


def demangle(text):
    dm = shutil.which("swift-demangle") or next(
        (p for p in ("/opt/swift/usr/bin/swift-demangle",) if os.access(p, os.X_OK)), None)
    if not dm:
        return text
    return subprocess.run([dm, "--simplified"], input=text, capture_output=True, text=True).stdout.rstrip()


def run_profiled(argv, log, timeout, on_timeout, env=None):
    """Runs a profiler command; at the timeout calls on_timeout(pid) (which must end the profiled program)."""
    with open(log, "w") as err:
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, env=env)
        try:
            p.wait(timeout=timeout)
            return False
        except subprocess.TimeoutExpired:
            on_timeout(p.pid)
            p.wait()
            return True


def sigsuspend_shim(base):
    """Compiles bench/valgrind-sigsuspend.c (see there why valgrind 3.19 needs it for a Swift async main) to
    base/valgrind-sigsuspend.so; returns its path, or None without a C compiler."""
    so = os.path.join(base, "valgrind-sigsuspend.so")
    src = os.path.join(BENCH, "valgrind-sigsuspend.c")
    if os.path.exists(so) and os.path.getmtime(so) >= os.path.getmtime(src):
        return so
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc or subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", so, src]).returncode != 0:
        print("profile: no C compiler for bench/valgrind-sigsuspend.c; valgrind 3.19 may stop with SIGSEGV")
        return None
    return so


def callgrind_profile(dsar, base, n, spool_args, where, req, logs, timeout):
    """One dsar run of the n-subject batch under valgrind --tool=callgrind.
    Returns (program total Ir or None, top-15 text, seconds, note)."""
    # valgrind 3.19 (Debian 12) cannot read the DWARF 5 debug info Swift 6 emits: profile a copy without it
    # (the symbol table stays, so functions keep their names).
    binary = os.path.join(base, "dsar.nodebug")
    # Made again from the binary under test every time (a copy left by an earlier run may be of another build).
    if os.path.exists(binary):
        os.unlink(binary)
    if shutil.which("objcopy") and subprocess.run(["objcopy", "--strip-debug", dsar, binary]).returncode == 0:
        os.chmod(binary, 0o755)
    else:
        binary = dsar
    env = dict(os.environ)
    shim = sigsuspend_shim(base)
    if shim:
        env["LD_PRELOAD"] = shim
    spool, _ = fresh_spool(dsar, where, req)
    cg = os.path.join(base, "callgrind.b%d.out" % n)
    for f in os.listdir(base):
        if f.startswith("callgrind.b%d.out" % n):
            os.unlink(os.path.join(base, f))
    print("profile: dsar run (%d subject%s, %d MiB corpus) under valgrind --tool=callgrind (slow; at most %d s) …" % (
        n, "" if n == 1 else "s", PROFILE_MB, timeout), flush=True)
    t = time.time()

    def stop(pid):
        subprocess.run(["callgrind_control", "--dump", str(pid)], capture_output=True)
        time.sleep(2)
        for c in [pid] + children(pid):
            try:
                os.kill(c, signal.SIGKILL)
            except OSError:
                pass
    vlog = os.path.join(logs, "profile-valgrind-b%d.err" % n)
    timed_out = run_profiled(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg, binary] + spool_args(spool),
                             vlog, timeout, stop, env=env)
    secs = time.time() - t
    shutil.rmtree(where, ignore_errors=True)
    dumps = sorted((os.path.join(base, f) for f in os.listdir(base) if f.startswith("callgrind.b%d.out" % n)),
                   key=os.path.getmtime)
    dumps = [d for d in dumps if "events:" in open(d, errors="replace").read(4096)]
    if not dumps:
        err = open(vlog, errors="replace").read()
        m = re.search(r"VALGRIND INTERNAL ERROR[^\n]*|valgrind: the 'impossible' happened[^\n]*|Valgrind: [^\n]*Giving up[^\n]*", err)
        return None, "", secs, "valgrind produced no profile (%s; see %s)" % (
            m.group(0).strip() if m else "exit without output", vlog)
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", dumps[-1]], capture_output=True, text=True).stdout
    rows, started = [], False
    for l in ann.splitlines():
        if "file:function" in l:
            started = True
        elif started and re.match(r"^\s*[\d,]+ ", l):
            rows.append(l.rstrip())
            if len(rows) == 15:
                break
    total = re.search(r"^\s*([\d,]+) .*PROGRAM TOTALS", ann, re.M)
    note = "stopped at the timeout: the run so far" if timed_out else ""
    return (int(total.group(1).replace(",", "")) if total else None), demangle("\n".join(rows)), secs, note


def perf_profile(dsar, base, n, spool_args, where, req, logs, timeout):
    """One dsar run of the n-subject batch under perf record -g. Returns (top-15 text, seconds, note)."""
    spool, _ = fresh_spool(dsar, where, req)
    data = os.path.join(base, "perf.b%d.data" % n)
    print("profile: dsar run (%d subject%s) under perf record -g (at most %d s) …" % (n, "" if n == 1 else "s", timeout),
          flush=True)
    t = time.time()

    def stop(pid):
        for c in children(pid):
            os.kill(c, signal.SIGKILL)      # the profiled dsar; perf then writes its data and exits
    timed_out = run_profiled(["perf", "record", "-F", "999", "-g", "-o", data, "--", dsar] + spool_args(spool),
                             os.path.join(logs, "profile-perf-b%d.err" % n), timeout, stop)
    secs = time.time() - t
    shutil.rmtree(where, ignore_errors=True)
    rep = subprocess.run(["perf", "report", "-i", data, "--children", "--sort", "sym", "-g", "none", "--stdio"],
                         capture_output=True, text=True).stdout
    rows = [l.rstrip() for l in rep.splitlines() if re.match(r"^\s+[\d.]+%\s+[\d.]+%", l)][:15]
    return demangle("\n".join(rows)), secs, ("stopped at the timeout" if timed_out else "")


def profile(dsar, seed, logs, timeout):
    """The 1- and 1000-subject batches on a 20 MiB corpus, each once under callgrind (instruction counts, repeatable
    on a noisy machine) and once under perf (sampled on-CPU time). Returns the Markdown of the profile section
    (without its heading), or None when neither profiler could run."""
    base = os.path.join(OUT, "profile")
    generate(base, PROFILE_MB, seed, PROFILE_BATCHES)
    where = os.path.join(OUT, "runs", "profile")
    spool_args = lambda spool: ["run", "--settle", "0", "--connectors", os.path.join(base, "connectors"), "--spool",
                                spool, "--log-format", "json"]
    have_cg = bool(shutil.which("valgrind") and shutil.which("callgrind_annotate"))
    have_perf = bool(shutil.which("perf"))
    if not have_cg and not have_perf:
        print("profile: neither valgrind nor perf is installed (apt-get install valgrind linux-perf)")
        return None
    summary, parts, raw = [], [], []
    for n in PROFILE_BATCHES:
        req = os.path.join(base, "requests", "b%d" % n)
        label = "%d subject%s" % (n, "" if n == 1 else "s")
        ir, cg_top, cg_s, cg_note = (None, "", 0.0, "valgrind is not installed (apt-get install valgrind)")
        if have_cg:
            ir, cg_top, cg_s, cg_note = callgrind_profile(dsar, base, n, spool_args, where, req, logs, timeout)
        pf_top, pf_s, pf_note = ("", 0.0, "perf is not installed (apt-get install linux-perf)")
        if have_perf:
            pf_top, pf_s, pf_note = perf_profile(dsar, base, n, spool_args, where, req, logs, timeout)
        summary.append("| %s | %s | %s | %s |" % (label, "{:,}".format(ir) if ir is not None else "—",
                                                  "%.0f" % cg_s if have_cg else "—", cg_note or ""))
        if cg_top:
            parts.append("### %s: callgrind, top 15 by inclusive Ir\n\n```\n%s\n```" % (label, cg_top))
            raw.append("callgrind %s (program total %s Ir)\n%s" % (label, ir, cg_top))
        if pf_top:
            parts.append("### %s: perf report --children, top 15 (inclusive %%, self %% of on-CPU samples; %.1f s%s)"
                         "\n\n```\n%s\n```" % (label, pf_s, ", " + pf_note if pf_note else "", pf_top))
            raw.append("perf %s\n%s" % (label, pf_top))
        elif have_perf:
            parts.append("### %s: perf\n\nno samples (%s)" % (label, os.path.join(logs, "profile-perf-b%d.err" % n)))
    md = ("Each batch on a %d MiB corpus (`bench/out/profile/`), one `dsar run` under `valgrind --tool=callgrind` "
          "(instruction counts: the same on every run, unlike wall time on a shared machine; Ir = instructions "
          "executed, whole program, all threads) and one under `perf record -g` (sampled on-CPU time).\n\n"
          "| batch | callgrind Ir (program total) | s under valgrind | note |\n|---|---:|---:|---|\n%s\n\n%s" % (
              PROFILE_MB, "\n".join(summary), "\n\n".join(parts)))
    with open(os.path.join(base, "profile.top15.txt"), "w") as f:
        f.write("\n\n".join(raw) + "\n")
    print("\n== profile (full data: %s)" % base)
    print(md)
    return md


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=int(os.environ.get("BENCH_MB", 200)), help="corpus size in MiB (uncompressed)")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 3)), help="runs per measurement (median)")
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("BENCH_TIMEOUT", 900)),
                    help="seconds after which one dsar run is killed and reported as a lower bound")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("BENCH_SEED", 20261129)))
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build-release", "release", "dsar"))
    ap.add_argument("--profile", action="store_true", help="also profile the 1- and 1000-subject cases (20 MiB corpus; callgrind and perf)")
    ap.add_argument("--profile-only", action="store_true", help="only the profile (appended to an existing RESULTS.md)")
    ap.add_argument("--results", default=os.path.join(BENCH, "RESULTS.md"))
    ap.add_argument("--live-pg", action="store_true",
                    help="also the live PostgreSQL case (bench/live_pg.py; needs the PostgreSQL server binaries)")
    ap.add_argument("--live-pg-only", action="store_true",
                    help="only the live PostgreSQL case (its section of an existing RESULTS.md is replaced)")
    ap.add_argument("--serve", action="store_true", help="also the HTTP API case (bench/serve.py; needs wrk)")
    ap.add_argument("--serve-only", action="store_true",
                    help="only the HTTP API case (its section of an existing RESULTS.md is replaced)")
    ap.add_argument("--serve-seconds", type=int, default=int(os.environ.get("BENCH_SERVE_SECONDS", 10)),
                    help="seconds of wrk load per route")
    a = ap.parse_args()
    dsar = os.path.abspath(a.bin)
    if not os.access(dsar, os.X_OK):
        raise SystemExit("bench: no dsar binary at %s (swift build -c release --scratch-path .build-release)" % dsar)
    if a.live_pg_only:
        write_live_pg(dsar, a)
        return
    if a.serve_only:
        write_serve(dsar, a)
        return
    for tool in ("rg", "age", "bsdtar", "/usr/bin/time", "gzip", "wc"):
        if not shutil.which(tool):
            raise SystemExit("bench: %s is missing (apt-get install ripgrep age libarchive-tools time)" % tool)
    os.makedirs(os.path.join(OUT, "logs"), exist_ok=True)
    if a.profile_only:
        prof = profile(dsar, a.seed, os.path.join(OUT, "logs"), a.timeout)
        if prof and os.path.exists(a.results):
            text = open(a.results).read()
            text = text.split(PROFILE_HEADING)[0].rstrip("\n") + "\n\n"
            with open(a.results, "w") as f:
                f.write(text + PROFILE_HEADING + " (run on its own, %s)\n\n%s\n" % (machine()["date"], prof))
            print("appended the profile to %s" % os.path.relpath(a.results, ROOT))
        return
    runs = max(1, a.runs)
    t_all = time.time()
    git_start = git_state()

    meta = generate(OUT, a.mb, a.seed, BATCHES)
    files = [f["path"] for f in meta["files"]]
    plain = [f["path"] for f in meta["files"] if not f["gzip"]]
    gz = [f["path"] for f in meta["files"] if f["gzip"]]
    logical = meta["logical_bytes"]
    work = os.path.join(OUT, "runs")
    logs = os.path.join(OUT, "logs")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(work)
    os.makedirs(logs)
    print("warming the page cache (%.0f MiB on disk) …" % (meta["disk_bytes"] / MiB), flush=True)
    warm(files)

    q = lambda p: "'" + p + "'"
    # Baselines: the read floor and a fixed-string multi-pattern search, over the same files.
    wc = Measurement("wc -l (read floor)", logical)
    repeat(wc, runs, lambda i: timed("wc -l %s; gzip -dc %s | wc -l" % (" ".join(map(q, plain)), " ".join(map(q, gz))),
                                     logs, "wc-run%d" % i, shell=True)[:2] + (False,))
    # rg per batch, with exactly that batch's identifiers: the baseline of each dsar batch.
    rgm, rg_lines, n_ids = {}, {}, {}
    rg_out = os.path.join(work, "rg.out")          # a real file: rg stops at the first match when stdout is /dev/null
    for n in BATCHES:
        ids = os.path.join(OUT, "ids-b%d.txt" % n)
        n_ids[n] = sum(1 for _ in open(ids))
        rgm[n] = Measurement("rg -z -F -f ids-b%d.txt (%d ids)" % (n, n_ids[n]), logical)
        repeat(rgm[n], runs, lambda i: timed("rg --no-config -z -F -f %s %s > %s" % (
            q(ids), " ".join(map(q, files)), q(rg_out)), logs, "rg-b%d-run%d" % (n, i), shell=True,
            ok_codes=(0, 1))[:2] + (False,))
        rg_lines[n] = sum(1 for _ in open(rg_out, "rb"))
        os.unlink(rg_out)

    checks, dm = {}, {}
    for n in BATCHES:
        dm[n] = measure_dsar(dsar, OUT, n, runs, work, logs, checks, a.timeout)
        dm[n].mbytes = logical
    seal_d, seal_b, seal = measure_seal(dsar, OUT, runs, work, logs)

    rrg = {n: ratio(dm[n], rgm[n]) for n in BATCHES}
    rfloor = {n: ratio(dm[n], wc) for n in BATCHES}
    r10000, rseal = ratio(dm[10000], dm[1000]), ratio(seal_d, seal_b)
    book = bookkeeping(dm[100], dm[1000])
    rows = [(dm[n], "; ".join(x for x in (fmt_ratio(rrg[n], "rg b%d" % n), fmt_ratio(rfloor[n], "read floor"),
                                          fmt_ratio(r10000, "dsar 1000") if n == 10000 else "") if x))
            for n in BATCHES]
    rows += [(rgm[n], "baseline of dsar %d" % n) for n in BATCHES]
    rows += [(wc, "read floor"), (seal_d, fmt_ratio(rseal, "bsdtar|age")), (seal_b, "baseline")]
    text, md = table(rows)
    dsar_ms = [dm[n] for n in BATCHES] + [seal_d]
    worst = max(dsar_ms, key=lambda m: m.peak_mib)
    peak = worst.peak_mib
    any_killed = any(m.killed for m in dsar_ms)
    rss_verdict = "no" if peak > 128 else ("unknown" if any_killed else "yes")
    fv = lambda r: ("%s%.2f×" % ("≥ " if r[1] == "lower" else "", r[0])) if r[1] != "unknown" else "?"
    fms = lambda r: ("%s%.2f ms" % ("≥ " if r[1] == "lower" else "", r[0])) if r[1] != "unknown" else "?"
    # The targets (issue 18), in its order.
    targets = [
        ("1 subject: dsar ≤ 1.5× rg (same ids)", fv(rrg[1]), verdict(rrg[1], 1.5)),
        ("100 subjects: dsar ≤ 1.0× rg (same ids)", fv(rrg[100]), verdict(rrg[100], 1.0)),
        ("1000 subjects: dsar ≤ 1.5× rg (same ids)", fv(rrg[1000]), verdict(rrg[1000], 1.5)),
        ("10000 subjects ≤ 3× dsar 1000", fv(r10000), verdict(r10000, 3.0)),
        ("peak RSS ≤ 128 MiB (every dsar run)", "%s%.1f MiB (%s)" % ("≥ " if worst.killed else "", peak, worst.label),
         rss_verdict),
        ("sealing one big bundle ≤ 1.5× bsdtar|age", fv(rseal), verdict(rseal, 1.5)),
        ("per-job bookkeeping (t1000 − t100) / 900 ≤ 0.5 ms", fms(book), verdict(book, 0.5)),
    ]

    # Correctness and where the time went, from the first run of each batch.
    corr, where_time = [], []
    for n in BATCHES:
        c = checks[n]
        label = "%d subject%s" % (n, "" if n == 1 else "s")
        where_time.append("- %s: %s" % (label, fmt_phases(c["phases"])) + (
            "; connector scan durations (job record): %s" % ", ".join(
                "%s %.1f s" % (k, v / 1000) for k, v in sorted(c["duration_ms"].items())) if "duration_ms" in c else ""))
        if c.get("killed"):
            corr.append("- %s: killed at the timeout, not checked" % label)
            continue
        got, exp = c["records"], meta["expected_records"][str(n)]
        parts = ["%s %d/%d%s" % (k, got.get(k, 0), exp[k], "" if got.get(k, 0) == exp[k] else " (differs)") for k in sorted(exp)]
        corr.append("- %s: %d jobs COMPLETED; records reported/expected: %s" % (label, c["jobs"], ", ".join(parts)))
    scanned = checks[1]["bytes_scanned"]
    mach = machine()
    notes = [m for m, _ in rows if m.note]
    git_end = git_state()
    git_note = git_start if git_end == git_start else "%s (HEAD moved to %s during the run)" % (git_start, git_end)

    print("\n== dsar benchmark: %.0f MiB corpus (%.0f MiB on disk), median of %d run%s, warm page cache" % (
        logical / MiB, meta["disk_bytes"] / MiB, runs, "" if runs == 1 else "s"))
    print(text)
    for m in notes:
        print("* %s: %s" % (m.label, m.note))
    print("\ntargets:")
    for name, val, ok in targets:
        print("  %-52s %-34s %s" % (name, val, ok))
    print("\nrecords (dsar vs the generator's ground truth):")
    print("\n".join("  " + c[2:] for c in corr))
    print("\nwhere dsar's time went (its own log, 1 s resolution):")
    print("\n".join("  " + c[2:] for c in where_time))

    prof = profile(dsar, a.seed, logs, a.timeout) if a.profile else None

    corpus_rows = "\n".join("| `%s` | %.1f | %.1f |" % (os.path.relpath(f["path"], OUT), f["logical_bytes"] / MiB,
                                                         f["disk_bytes"] / MiB) for f in meta["files"])
    res = RESULTS_TEMPLATE.format(
        date=mach["date"], nproc=mach["nproc"], cpu=mach["cpu"], mem=mach["mem"], kernel=mach["kernel"], mb=a.mb,
        runs=runs, s="" if runs == 1 else "s", seed=a.seed, timeout=a.timeout, slow=SLOW_RUN_S,
        dsarv=tool_version([dsar, "--version"]), git=git_note,
        built=datetime.datetime.fromtimestamp(os.path.getmtime(dsar), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        rgv=tool_version(["rg", "--version"]), agev="age " + tool_version(["age", "--version"]),
        tarv=tool_version(["bsdtar", "--version"]), lmb=logical / MiB, dmb=meta["disk_bytes"] / MiB, users=meta["users"],
        gen=meta["generated_in_s"], total=time.time() - t_all, md=md,
        starnotes="".join("\n\\* %s: %s\n" % (m.label, m.note) for m in notes),
        trows="\n".join("| %s | %s | %s |" % (n.replace("|", "\\|"), v, ok if ok != "no" else "**no**") for n, v, ok in targets),
        nids=", ".join("%d for b%d" % (n_ids[n], n) for n in BATCHES),
        rglines=", ".join("%d for b%d" % (rg_lines[n], n) for n in BATCHES), scsv=meta["seal_csv_bytes"] / MiB, srec=sum(seal["records"].values()),
        scont=seal["content_bytes"] / MiB, sfiles=", ".join(seal["files"]), sbund=seal["bundle_bytes"] / MiB,
        sscan=", ".join("%.1f s" % (v / 1000) for v in seal["scan_ms"].values()),
        bbase=seal.get("baseline_bytes", 0) / MiB, corr="\n".join(corr), where="\n".join(where_time),
        scanned=", ".join("%s %.1f MiB" % (c, b / MiB) for c, b in sorted(scanned.items())), corpus=corpus_rows)
    if prof:
        res += "\n" + PROFILE_HEADING + "\n\n" + prof + "\n"
    with open(a.results, "w") as f:
        f.write(res)
    print("\nwrote %s (%.0f s in all)" % (os.path.relpath(a.results, ROOT), time.time() - t_all))
    if a.live_pg:
        write_live_pg(dsar, a)
    if a.serve:
        write_serve(dsar, a)


def replace_section(path, heading, section):
    """Puts `section` (starting with `heading`) into the Markdown file, replacing an earlier one."""
    text = open(path).read() if os.path.exists(path) else ""
    head, sep, rest = text.partition(heading)
    tail = rest[rest.find("\n## "):] if sep and rest.find("\n## ") >= 0 else ""
    with open(path, "w") as f:
        f.write(head.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n" + tail)


def write_serve(dsar, a):
    """Runs bench/serve.py (wrk against `dsar serve`) and puts its section into RESULTS.md."""
    sys.path.insert(0, BENCH)
    import serve
    work = os.path.join(OUT, "runs")
    os.makedirs(work, exist_ok=True)
    section = serve.run(dsar, work, seconds=a.serve_seconds, profile=a.profile or a.profile_only)
    print("\n" + section)
    replace_section(a.results, serve.HEADING, section)
    print("wrote the HTTP API section of %s" % os.path.relpath(a.results, ROOT))


def write_live_pg(dsar, a):
    """Runs bench/live_pg.py and puts its section into RESULTS.md (replacing an earlier one)."""
    sys.path.insert(0, BENCH)
    import live_pg
    work = os.path.join(OUT, "runs")
    os.makedirs(work, exist_ok=True)
    section = live_pg.run(dsar, max(1, a.runs), work, fresh_spool, job_summary)
    print("\n" + section)
    text = open(a.results).read() if os.path.exists(a.results) else ""
    head, sep, rest = text.partition(live_pg.HEADING)
    tail = rest[rest.find("\n## "):] if sep and rest.find("\n## ") >= 0 else ""
    with open(a.results, "w") as f:
        f.write(head.rstrip("\n") + "\n\n" + section + tail)
    print("wrote the live PostgreSQL section of %s" % os.path.relpath(a.results, ROOT))


PROFILE_HEADING = "## Profile (`make bench PROFILE=1`)"

RESULTS_TEMPLATE = """# dsar benchmark results

Written by `make bench` (bench/bench.py); see bench/README.md for how to read it.

| | |
|---|---|
| date | {date} |
| machine | {nproc} × {cpu}, {mem} RAM, Linux {kernel} |
| BENCH_MB / BENCH_RUNS / seed | {mb} / {runs} / {seed} |
| dsar | {dsarv}, git {git}, `swift build -c release`, binary built {built} |
| tools | {rgv}; {agev}; {tarv} |
| corpus | {lmb:.1f} MiB uncompressed ({dmb:.1f} MiB on disk), {users} users, generated in {gen} s |
| whole benchmark | {total:.0f} s |

## Results

Median wall time of up to {runs} run{s} each (min–max shown), warm page cache, a fresh spool per dsar run.
MiB/s = uncompressed corpus bytes ÷ median wall time (sealing rows: bytes of the files inside the bundle).
Peak RSS = the largest "Maximum resident set size" of `/usr/bin/time -v` over the runs.
A measurement whose first run takes over {slow:.0f} s is not repeated; a dsar run still going after
BENCH_TIMEOUT = {timeout:.0f} s is killed, and its numbers are bounds (≥ / ≤).

{md}
{starnotes}
## Targets

| target | measured | met? |
|---|---|---|
{trows}

"unknown": the run was killed before it finished, and the bound does not decide the target.

## What is compared

- **dsar run N subjects**: `dsar run --settle 0 --connectors bench/out/connectors --spool <fresh spool>` with N export
  requests (e-mail + user id each) in the inbox: intake, one scan of every source for the whole batch, one sealed,
  signed outbox entry per job, the journal. Connectors: web-logs (access.log + access.log.1.gz, tokens), app-events
  (JSON lines), support-csv (CSV), shop-db (pg_dump COPY blocks, customers + orders).
- **rg b N**: `rg --no-config -z -F -f ids-bN.txt FILES > file` — the fixed strings of exactly that batch (the e-mail
  and user id of each of its N subjects: {nids}), all five files, the .gz decompressed by rg; output to a real file
  (matching lines: {rglines}). Each dsar batch is compared with the rg run over its own identifiers.
  rg matches substrings (no tokens, no case folding, no URL-decoding, no CSV/SQL parsing), so it is a lower bound
  for the work, not the same job.
- **wc -l**: `wc -l` over the plain files plus `gzip -dc access.log.1.gz | wc -l`: reading and decompressing only.
- **sealing**: dsar's time is a whole `dsar run` of one export request over a {scsv:.1f} MiB CSV whose every row
  belongs to the subject ({srec} records), which makes a bundle of {scont:.1f} MiB of files
  ({sfiles}; {sbund:.1f} MiB encrypted). It therefore also includes intake, parsing the CSV (connector duration
  in the job record: {sscan}), writing the JSON records, the report, the manifest, signing and fsyncs — not only
  ZIP + age. The baseline is `bsdtar --format zip -cf - FILES | age -r <recipient> > out` over exactly those files
  (taken from dsar's own bundle, decrypted and unpacked), i.e. deflate + age only ({bbase:.1f} MiB out).

## Correctness of the measured runs

dsar's per-connector record counts (`dsar status --json`, first run of each batch) against the generator's ground
truth (lines / rows holding a subject's identifier as an exact token or column value; near misses excluded):

{corr}

bytes_scanned per connector (job record, 1-subject batch): {scanned}.

## Where dsar's time went

From dsar's own JSON log of the first run of each batch (1 s resolution): intake = start until "batch started";
then until the first "bundle sealed" (the search, plus the per-job bookkeeping before sealing); then until the last
"job finished" (sealing and publishing every job). The connector durations come from the job records.

{where}

## Corpus

| file | MiB uncompressed | MiB on disk |
|---|---:|---:|
{corpus}
"""


if __name__ == "__main__":
    main()
