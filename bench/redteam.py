#!/usr/bin/env python3
"""dsar red-team harness (Python 3, standard library only).

    python3 bench/redteam.py --bin .build/debug/dsar [--only AREA[,AREA]] [--quick] [--keep] [--jobs N]

Generates hostile and broken inputs in temp dirs, runs the real `dsar` binary on them and judges every
case against an explicit expected outcome (issue 13, "Hostile and broken inputs"). Areas:

  requests      bad request drops in batches with good ones: each bad drop ends in rejected/ with a
                .reason (or waits, saying so, when young and cut off), good drops complete, nothing lost
  connectors    bad connector configs: `connectors check` exits 78 naming file:line, `dsar run` exits 78
                and leaves the inbox untouched (valid configs: 0)
  sources       corrupt sources: the run ends, the job is PARTIAL/FAILED naming the file (never COMPLETED
                when the subject's data could be in the unparsed part), or exit 78 naming it
  kill9         SIGKILL at random times and at every `DSAR_CRASH_AT` point, then a clean run: every
                request completed exactly once, nothing left in inbox/active/tmp, `audit verify` OK
  journal       tampered journals: `dsar audit verify` exits non-zero (0 for the untouched journal)
  concurrency   two runs, run vs watch, retry vs run, submit and drops during a run, SIGTERM/SIGINT
  diskfull      the spool on a small tmpfs at several fill levels (skipped when mount is not permitted)

Every dsar process has a time bound: past it its process group is killed and the case is a hang.
Exit code 0 only when every case is correct. With --keep the temp dirs are kept (printed at the end).
"""

import argparse
import concurrent.futures
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
AREAS = ["requests", "connectors", "sources", "kill9", "journal", "concurrency", "diskfull"]
KiB, MiB = 1 << 10, 1 << 20

BIN = None            # absolute path of the dsar binary
BASE = None           # temp root of this run
TEMPLATE = None       # an initialised spool (init + keygen + config) copied for every case
QUICK = False
RNG = random.Random(13)
_counter = [0]
_counter_lock = threading.Lock()


class Hang(Exception):
    pass


class Verdict(Exception):
    """Raised inside a case to fail it with a one-line reason."""


# ----------------------------------------------------------------------------------------------
# Processes and spools
# ----------------------------------------------------------------------------------------------

def run(argv, timeout=10.0, env=None, cwd=None, stdin_data=None):
    """Runs argv in its own process group; returns (rc, stdout, stderr). Past `timeout` the whole group
    is SIGKILLed and Hang is raised. rc < 0 is the signal that ended it."""
    e = dict(os.environ)
    e.pop("DSAR_CRASH_AT", None)
    e.pop("DSAR_SPOOL", None)
    e.pop("DSAR_CONNECTORS", None)
    if env:
        e.update(env)
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, cwd=cwd, start_new_session=True)
    try:
        out, err = p.communicate(stdin_data, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p)
        p.communicate()
        raise Hang("%s did not end within %.0f s" % (" ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv[:3])), timeout))
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def start(argv, env=None):
    e = dict(os.environ)
    e.pop("DSAR_CRASH_AT", None)
    if env:
        e.update(env)
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=e, start_new_session=True)


def finish(p, timeout):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p)
        p.communicate()
        raise Hang("dsar did not end within %.0f s" % timeout)
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def kill_group(p, sig=signal.SIGKILL):
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass


def crashed(rc):
    return rc < 0 or rc >= 128


def rcname(rc):
    return "signal %d" % -rc if rc < 0 else "exit %d" % rc


def new_dir(tag):
    with _counter_lock:
        _counter[0] += 1
        n = _counter[0]
    d = os.path.join(BASE, "%s-%04d" % (tag, n))
    os.makedirs(d)
    return d


class Spool:
    """A copy of the template spool in a fresh case dir, with helpers around the dsar binary."""

    def __init__(self, tag, root=None):
        self.base = new_dir(tag)
        self.root = root or os.path.join(self.base, "spool")
        shutil.copytree(os.path.join(TEMPLATE, "spool"), self.root, symlinks=True)
        self.connectors = os.path.join(self.base, "connectors")
        os.makedirs(self.connectors)
        self.team = os.path.join(TEMPLATE, "team-keys")

    def argv(self, args):
        return [BIN] + args + ["--spool", self.root, "--log-format", "json"]

    def dsar(self, args, timeout=20.0, env=None, stdin_data=None):
        return run(self.argv(args), timeout=timeout, env=env, stdin_data=stdin_data)

    def start(self, args, env=None):
        return start(self.argv(args), env=env)

    def run_batch(self, timeout=30.0, env=None, extra=()):
        return self.dsar(["run", "--settle", "0", "--connectors", self.connectors] + list(extra), timeout=timeout, env=env)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def names(self, d, dots=False):
        try:
            return sorted(n for n in os.listdir(os.fsencode(self.path(d))) if dots or not n.startswith(b"."))
        except FileNotFoundError:
            return []

    def all_files(self, d):
        out = []
        for dirpath, dirnames, filenames in os.walk(os.fsencode(self.path(d))):
            out += [os.path.join(dirpath, f) for f in filenames]
            out += [os.path.join(dirpath, x) for x in dirnames if os.path.islink(os.path.join(dirpath, x))]
        return out

    def records(self):
        recs = []
        for n in self.names("jobs"):
            if n.endswith(b".json"):
                try:
                    with open(os.path.join(os.fsencode(self.path("jobs")), n), "rb") as f:
                        recs.append(json.loads(f.read()))
                except (OSError, ValueError) as e:
                    recs.append({"job_id": os.fsdecode(n), "status": "UNREADABLE", "error": str(e)})
        return recs

    def drop(self, name, data, in_place=False, mtime_ago=None):
        """Writes a request into the inbox: via a dot temp file and a rename unless in_place."""
        bname = name if isinstance(name, bytes) else name.encode()
        inbox = os.fsencode(self.path("inbox"))
        target = os.path.join(inbox, bname)
        tmp = target if in_place else os.path.join(inbox, b"." + bname + b".upload")
        with open(tmp, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        if not in_place:
            os.rename(tmp, target)
        if mtime_ago:
            t = time.time() - mtime_ago
            os.utime(target, (t, t))
        return target

    def audit_verify(self, timeout=20.0):
        return self.dsar(["audit", "verify"], timeout=timeout)


def write(path, data, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    if mode is not None:
        os.chmod(path, mode)


def make_template(base):
    global TEMPLATE
    TEMPLATE = os.path.join(base, "template")
    spool = os.path.join(TEMPLATE, "spool")
    team = os.path.join(TEMPLATE, "team-keys")
    os.makedirs(TEMPLATE)
    rc, out, err = run([BIN, "init", "--spool", spool, "--log-format", "json"], timeout=60)
    if rc != 0:
        sys.exit("dsar init failed (%s): %s" % (rcname(rc), err.strip()[-500:]))
    rc, out, err = run([BIN, "keygen", "--out", team], timeout=60)
    if rc != 0:
        sys.exit("dsar keygen failed (%s): %s" % (rcname(rc), err.strip()[-500:]))
    with open(os.path.join(team, "age.pub")) as f:
        recipient = f.read().strip()
    write(os.path.join(spool, "config.yaml"),
          "recipients: [ %s ]\nrequire_signed_requests: false\nidentifier_types: [ loyalty_card ]\n" % recipient, 0o640)


# ----------------------------------------------------------------------------------------------
# Shared data
# ----------------------------------------------------------------------------------------------

SQL_TABLES = ("  customers: { match: { email: email, id: user_id, phone: phone }, text: [ notes ] }\n"
              "  orders: { match: { customer_id: user_id }, text: [ note ] }\n"
              "  support_tickets: { match: { customer_email: email }, text: [ body ] }\n")

PEOPLE_CSV = ("email,user_id,note\n"
              "alice@example.com,1042,first customer\n"
              "bob@example.org,2001,regular\n"
              "carol@example.net,2002,regular\n"
              "malice@example.com,10420,not alice\n")


def baseline_connector(dirpath, name="people"):
    """A small valid CSV connector (the good source every spool gets)."""
    write(os.path.join(dirpath, "data", name + ".csv"), PEOPLE_CSV)
    write(os.path.join(dirpath, name + ".yaml"),
          "name: %s\ntype: csv\npaths: [ data/%s.csv ]\ncolumns: { email: email, user_id: user_id }\ntext: [ note ]\n"
          "erase: delete\n" % (name, name))


def request(rid, email=None, user=None, action="export", **extra):
    d = {"request_id": rid, "action": action}
    if email:
        d["email"] = email
    if user:
        d["user_id"] = user
    d.update(extra)
    return json.dumps(d)


def job_text(rec):
    """Everything a job record says about why it ended as it did."""
    parts = [str(rec.get("error") or "")]
    for c in rec.get("connectors") or []:
        parts.append(str(c.get("error") or ""))
        parts.append(json.dumps(c.get("details") or {}))
    for h in rec.get("history") or []:
        parts.append(str(h.get("detail") or ""))
    return " | ".join(p for p in parts if p)


def by_request(recs):
    out = {}
    for r in recs:
        out.setdefault(r.get("request_id"), []).append(r)
    return out


def spool_problems(sp, expected):
    """What the kill -9 / concurrency checks require after a clean run: each request id in `expected`
    has exactly one COMPLETED job with one published outbox entry; inbox/, active/, tmp/, failed/ are
    empty; no outbox staging; outbox entries are exactly the completed jobs."""
    problems = []
    recs = sp.records()
    br = by_request(recs)
    for rid in expected:
        jobs = br.get(rid, [])
        if len(jobs) != 1:
            problems.append("request %s has %d job records" % (rid, len(jobs)))
            continue
        j = jobs[0]
        if j.get("status") != "COMPLETED":
            problems.append("job of %s is %s: %s" % (rid, j.get("status"), job_text(j)[:160]))
        if not os.path.isdir(sp.path("outbox", j.get("job_id", "?"))):
            problems.append("no outbox entry for %s" % rid)
    strays = [r.get("request_id") for r in recs if r.get("request_id") not in expected]
    if strays:
        problems.append("jobs for requests never dropped: %s" % strays)
    for d in ("inbox", "active", "tmp", "failed"):
        left = sp.all_files(d)
        if left:
            problems.append("%s/ not empty: %s" % (d, [os.path.basename(os.fsdecode(x)) for x in left][:5]))
    outbox = [os.fsdecode(n) for n in sp.names("outbox", dots=True)]
    staged = [n for n in outbox if n.startswith(".")]
    if staged:
        problems.append("outbox staging left: %s" % staged)
    completed = {r.get("job_id") for r in recs if r.get("status") == "COMPLETED"}
    if set(n for n in outbox if not n.startswith(".")) != completed:
        problems.append("outbox entries differ from completed jobs (%d entries, %d completed)"
                        % (len([n for n in outbox if not n.startswith('.')]), len(completed)))
    return problems


# ----------------------------------------------------------------------------------------------
# Area: bad request files
# ----------------------------------------------------------------------------------------------

def valid_request_text(rid):
    return '{"request_id":"%s","action":"export","subject":{"email":"cut@example.com","user_id":"77"},"regulation":"gdpr"}' % rid


def request_cases():
    """(name, kind, payload, expect) — kind: file | symlink | fifo | dir; expect: reject | either | wait."""
    cases = []
    n = [0]

    def rid():
        n[0] += 1
        return "BAD-%03d" % n[0]

    def add(label, payload, kind="file", expect="reject", fname=None, age=3600):
        cases.append({"label": label, "payload": payload, "kind": kind, "expect": expect, "fname": fname, "age": age})

    # cut at every position of a valid request (aged: an old cut-off drop is rejected)
    full = valid_request_text("CUT-1").encode()
    step = 9 if QUICK else 1
    for k in range(0, len(full), step):
        add("cut at byte %d of %d" % (k, len(full)), full[:k])
    # young cut-off drops: may wait (saying so) or be rejected
    for k in (len(full) // 3, len(full) - 1):
        add("young drop cut at byte %d" % k, full[:k], expect="wait", age=None)
    R = lambda **kw: json.dumps(dict({"request_id": rid(), "action": "export", "email": "w@example.com"}, **kw))
    wrong = [("action number", R(action=1)), ("action null", R(action=None)), ("action list", R(action=["export"])),
             ("action object", R(action={"x": 1})), ("subject string", R(subject="alice")),
             ("subject number", R(subject=5)), ("subject list", R(subject=["email"])), ("email number", R(email=5)),
             ("email object", R(email={"v": "a@b.c"})), ("email list of numbers", R(email=[1, 2])),
             ("email empty list", json.dumps({"request_id": rid(), "action": "export", "email": []})),
             ("email empty string", json.dumps({"request_id": rid(), "action": "export", "email": ""})),
             ("request_id number", json.dumps({"request_id": 5, "action": "export", "email": "w@example.com"})),
             ("received_at number", R(received_at=1700000000)), ("dry_run string", R(dry_run="yes")),
             ("regulation unknown", R(regulation="hipaa")), ("regulation number", R(regulation=1)),
             ("no identifier", json.dumps({"request_id": rid(), "action": "export"})),
             ("empty subject", json.dumps({"request_id": rid(), "action": "export", "subject": {}})),
             ("no action", json.dumps({"request_id": rid(), "email": "w@example.com"})),
             ("unknown field", R(emali="x@example.com")), ("unknown field Action", R(Action="export")),
             ("unknown field nested junk", R(extra={"a": [1, {"b": [None, True]}]})),
             ("unknown identifier type", R(subject={"emial": "x@example.com"})),
             ("nested junk in subject", R(subject={"email": {"a": {"b": "c"}}})),
             ("unknown action erase", R(action="erase")), ("unknown action empty", R(action="")),
             ("received_at far future", R(received_at="2999-01-01T00:00:00Z")),
             ("received_at malformed", R(received_at="yesterday")),
             ("received_at month 13", R(received_at="2026-13-45T00:00:00Z")),
             ("received_at date only", R(received_at="2026-11-20")),
             ("received_at empty", R(received_at="")),
             ("request_id 129 chars", json.dumps({"request_id": "R" * 129, "action": "export", "email": "w@example.com"})),
             ("request_id 200 KiB", json.dumps({"request_id": "R" * 200000, "action": "export", "email": "w@example.com"})),
             ]
    for label, text in wrong:
        add(label, text.encode())
    base = '{"request_id":"%s","action":"export","email":"w@example.com"' % "X"
    raw = [("huge number in action", '{"request_id":"%s","action":1e999999,"email":"w@example.com"}' % rid()),
           ("huge integer in unknown field", '{"request_id":"%s","action":"export","email":"w@example.com","n":%s}' % (rid(), "9" * 5000)),
           ("huge exponent dry_run", '{"request_id":"%s","action":"export","email":"w@example.com","dry_run":-1e-999999}' % rid()),
           ("deep nesting 100k arrays", "[" * 100000 + "]" * 100000),
           ("deep nesting 100k objects in field", '{"request_id":"%s","action":"export","email":"w@example.com","x":' % rid() + '{"a":' * 100000 + "1" + "}" * 100000 + "}"),
           ("deep nesting unclosed 1M", "[" * 1000000),
           ("duplicate key action", '{"request_id":"%s","action":"export","action":"delete","email":"w@example.com"}' % rid()),
           ("duplicate key email", '{"request_id":"%s","action":"export","email":"a@example.com","email":"b@example.com"}' % rid()),
           ("duplicate key subject", '{"request_id":"%s","action":"export","subject":{"email":"a@example.com"},"subject":{"email":"b@example.com"}}' % rid()),
           ("empty file", ""), ("whitespace only", " \n\t\r\n  "), ("null", "null"), ("array", "[]"), ("string", '"export"'),
           ("number", "42"), ("true", "true"), ("empty object", "{}"),
           ("trailing garbage", '{"request_id":"%s","action":"export","email":"w@example.com"} x' % rid()),
           ("two objects", '{"request_id":"%s","action":"export","email":"w@example.com"}{"action":"delete"}' % rid()),
           ("trailing comma", '{"request_id":"%s","action":"export","email":"w@example.com",}' % rid()),
           ("comment", '// hi\n{"request_id":"%s","action":"export","email":"w@example.com"}' % rid()),
           ("single quotes", "{'request_id':'%s','action':'export','email':'w@example.com'}" % rid()),
           ("NaN", '{"request_id":"%s","action":"export","email":"w@example.com","dry_run":NaN}' % rid()),
           ("raw control char in string", '{"request_id":"%s","action":"export","email":"w@exa\x01mple.com"}' % rid()),
           ("invalid escape", '{"request_id":"%s","action":"export","email":"w@example\\x.com"}' % rid()),
           ("lone surrogate in email", '{"request_id":"%s","action":"export","email":"w\\ud800@example.com"}' % rid()),
           ]
    for label, text in raw:
        add(label, text.encode())
    ok = valid_request_text
    add("2 MiB of whitespace after a valid request", ok(rid()).encode() + b" " * (2 * MiB))
    add("2 MiB string value", ('{"request_id":"%s","action":"export","email":"w@example.com","x":"' % rid()).encode() + b"a" * (2 * MiB) + b'"}')
    add("UTF-8 BOM before a valid request", b"\xef\xbb\xbf" + ok(rid()).encode(), expect="either")
    add("UTF-16LE with BOM", b"\xff\xfe" + ok(rid()).encode("utf-16-le"))
    add("UTF-16BE with BOM", b"\xfe\xff" + ok(rid()).encode("utf-16-be"))
    add("UTF-16LE without BOM", ok(rid()).encode("utf-16-le"))
    add("UTF-32LE", ok(rid()).encode("utf-32"))
    add("NUL byte inside a string", ('{"request_id":"%s","action":"export","email":"w@exa' % rid()).encode() + b"\x00" + b'mple.com"}')
    add("NUL after the object", ok(rid()).encode() + b"\x00")
    add("only NUL bytes", b"\x00" * 64)
    add("non-UTF-8 byte in a value", ('{"request_id":"%s","action":"export","email":"w' % rid()).encode() + b"\xff" + b'@example.com"}')
    add("latin-1 e-acute in a value", ('{"request_id":"%s","action":"export","email":"jos' % rid()).encode() + b"\xe9" + b'@example.com"}')
    add("overlong UTF-8 in a value", ('{"request_id":"%s","action":"export","email":"w' % rid()).encode() + b"\xc0\xaf" + b'@example.com"}')
    add("random binary junk", bytes(RNG.getrandbits(8) for _ in range(4096)))
    add("symlink to a valid request", ok(rid()).encode(), kind="symlink")
    add("symlink to /dev/zero", b"/dev/zero", kind="devlink")
    add("FIFO named x.json", b"", kind="fifo")
    add("directory named x.json", b"", kind="dir")
    add("e-mail as file name, bad body", b"{not json", fname="victim.person@example.com.json")
    add("non-UTF-8 file name, bad body", b"{not json", fname=b"bad-\xff\xfe-name.json")
    add("non-UTF-8 file name, valid body", ok(rid()).encode(), fname=b"good-\xe9-name.json", expect="either")
    add("name with newline, bad body", b"{not json", fname="line\nbreak.json")
    return cases


def place_request_case(sp, i, c):
    name = c["fname"] or ("case-%03d.json" % i)
    bname = name if isinstance(name, bytes) else name.encode()
    inbox = os.fsencode(sp.path("inbox"))
    target = os.path.join(inbox, bname)
    if c["kind"] == "file":
        sp.drop(bname, c["payload"], mtime_ago=c["age"])
    elif c["kind"] == "symlink":
        src = os.path.join(sp.base, "outside-%03d.json" % i)
        write(src, c["payload"])
        os.symlink(src, target)
    elif c["kind"] == "devlink":
        os.symlink(c["payload"], target)
    elif c["kind"] == "fifo":
        os.mkfifo(target)
    elif c["kind"] == "dir":
        os.mkdir(target)
        write(os.path.join(os.fsdecode(target), "inner.json"), valid_request_text("INNER"))
    return bname


def judge_request_batch(batch):
    """Runs one batch (list of (index, case)) with two good drops; returns ({index: reason or None}, batch_problem)."""
    sp = Spool("req")
    baseline_connector(sp.connectors)
    names = {}
    for i, c in batch:
        names[i] = place_request_case(sp, i, c)
    good = ["GOOD-%d-%d" % (batch[0][0], k) for k in range(2)]
    sp.drop("good-a.json", request(good[0], email="alice@example.com"))
    sp.drop("victim.good@example.com.json", request(good[1], email="bob@example.org"))
    results = {}
    try:
        rc, out, err = sp.run_batch(timeout=60)
    except Hang as h:
        return {i: "hang: %s" % h for i, _ in batch}, "hang"
    if crashed(rc):
        return {i: "dsar run crashed (%s): %s" % (rcname(rc), err.strip().splitlines()[-1:] or "") for i, _ in batch}, "crash"
    problems = []
    recs = sp.records()
    br = by_request(recs)
    for g in good:
        js = br.get(g, [])
        if len(js) != 1 or js[0].get("status") != "COMPLETED":
            problems.append("good drop %s: %s" % (g, [(j.get("status"), job_text(j)[:100]) for j in js] or "no job"))
    if rc not in (1, 2):
        problems.append("dsar run exited %d with rejected drops (README: 2)" % rc)
    inbox = set(sp.names("inbox"))
    rejected = set(sp.names("rejected"))
    jtext = b""
    for n in sp.names("journal"):
        p = os.path.join(os.fsencode(sp.path("journal")), n)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                jtext += f.read()
    def escaped_reason_file(raw):
        # A name that is not UTF-8 is rejected under its pseudonym (rejected/drop-….json); its .reason
        # shows the name escaped (\xff).
        esc = "".join(chr(b) if 0x20 <= b < 0x7F else "\\x%02x" % b for b in raw).encode()
        for r in rejected:
            if r.endswith(b".reason"):
                with open(os.path.join(os.fsencode(sp.path("rejected")), r), "rb") as f:
                    if esc in f.read():
                        return r[: -len(b".reason")]
        return None
    for i, c in batch:
        n = names[i]
        try:
            n.decode("utf-8")
        except UnicodeDecodeError:
            n = escaped_reason_file(n) or n
        in_inbox = n in inbox
        in_rej = n in rejected
        has_reason = (n + b".reason") in rejected
        reason = None
        if c["expect"] == "wait":
            if in_inbox and not in_rej:
                # Logs name drops by their keyed pseudonym (a name may be personal data).
                if os.fsdecode(n) not in err and "drop is incomplete" not in err:
                    reason = "young cut-off drop waits in inbox/ but the log does not say so"
            elif in_rej and not has_reason:
                reason = "rejected without a .reason"
            elif not in_rej:
                reason = "drop vanished (neither in inbox/ nor rejected/)"
        elif c["expect"] == "either":
            if in_inbox:
                reason = "left in inbox/ (neither taken nor rejected)"
            elif in_rej and not has_reason:
                reason = "rejected without a .reason"
            elif not in_rej:
                try:
                    rid_ = json.loads(c["payload"].lstrip(b"\xef\xbb\xbf").decode()).get("request_id")
                except Exception:
                    rid_ = None
                js = br.get(rid_, [])
                if len(js) != 1:
                    reason = "drop vanished: not rejected and %d jobs" % len(js)
        else:
            if in_inbox:
                reason = "left in inbox/ instead of rejected/"
            elif not in_rej:
                try:
                    d = json.loads(c["payload"])
                    taken = isinstance(d, dict) and d.get("request_id") in br
                except Exception:
                    taken = False
                reason = "accepted as a job instead of rejected" if taken else "vanished (neither in inbox/, rejected/ nor a job)"
            elif not has_reason:
                reason = "rejected/ without a .reason"
            else:
                with open(os.path.join(os.fsencode(sp.path("rejected")), n + b".reason"), "rb") as f:
                    txt = f.read().strip()
                if len(txt) < 10:
                    reason = "empty .reason"
            if reason is None:
                try:
                    d = json.loads(c["payload"])
                    if isinstance(d, dict) and isinstance(d.get("request_id"), str) and d["request_id"] in br:
                        reason = "a job was created for a rejected drop"
                except Exception:
                    pass
        if reason is None and isinstance(c["fname"], str) and "@" in c["fname"] and c["fname"].encode() in jtext:
            reason = "the e-mail file name is written into the journal (personal data)"
        results[i] = reason
    if b"victim.good@example.com" in jtext:
        problems.append("the e-mail file name victim.good@example.com.json is written into the journal (personal data)")
    return results, ("; ".join(problems) if problems else None)


def area_requests(pool):
    cases = request_cases()
    idx = list(enumerate(cases))
    size = 16
    batches = [idx[k:k + size] for k in range(0, len(idx), size)]
    out = {}

    def do(batch):
        res, problem = judge_request_batch(batch)
        if problem:
            # attribute: each case on its own with its good drops
            res = {}
            for i, c in batch:
                r1, p1 = judge_request_batch([(i, c)])
                res[i] = r1[i] or (("batch: " + p1) if p1 else None)
        return res

    for res in pool.map(do, batches):
        out.update(res)
    return [("requests", cases[i]["label"], out[i]) for i, _ in idx]


# ----------------------------------------------------------------------------------------------
# Area: bad connector configs
# ----------------------------------------------------------------------------------------------

CSV_OK = "name: bad\ntype: csv\npaths: [ data/people.csv ]\ncolumns: { email: email, user_id: user_id }\n"


def connector_cases():
    """(label, filename, content or special, expect_check, line_expected, run_expect) —
    expect_check 78 or 0; run_expect 78, 0 or None (run-time checks not required)."""
    C = []

    def bad(label, text, name="bad.yaml", line=True, run78=True):
        C.append({"label": label, "name": name, "text": text, "check": 78, "line": line, "run": 78 if run78 else None})

    def good(label, text, name="good.yaml"):
        C.append({"label": label, "name": name, "text": text, "check": 0, "line": False, "run": 0})

    good("valid csv connector", CSV_OK)
    good("valid .yml extension", CSV_OK, name="good.yml")
    good("valid with comments and a tab inside a comment", "# a\tcomment\n" + CSV_OK + "# end\n")
    good("valid block style", "name: bad\ntype: csv\npaths:\n  - data/people.csv\ncolumns:\n  email: email\n  user_id: user_id\n")
    good("valid log with pattern group", "name: bad\ntype: log\npaths: [ data/app.log ]\nmatch: [ email, { type: user_id, pattern: '/users/([0-9]+)' } ]\n")
    good("valid sqldump", "name: bad\ntype: sqldump\npaths: [ data/pg.sql ]\ntables:\n" + SQL_TABLES)
    # unknown keys
    bad("unknown top-level key", CSV_OK + "colums: { email: email }\n")
    bad("unknown key foo", CSV_OK + "foo: 1\n")
    bad("capitalised key Name", CSV_OK.replace("name:", "Name:"))
    bad("unknown key in column spec", CSV_OK.replace("user_id: user_id", "user_id: { type: user_id, expnd: false }"))
    bad("unknown key in table spec", "name: bad\ntype: sqldump\npaths: [ data/pg.sql ]\ntables:\n  customers: { match: { email: email }, eras: delete }\n")
    # wrong types
    bad("name is a list", CSV_OK.replace("name: bad", "name: [ a, b ]"))
    bad("name is a map", CSV_OK.replace("name: bad", "name: { a: b }"))
    bad("type is a number", CSV_OK.replace("type: csv", "type: 5"))
    bad("unknown type", CSV_OK.replace("type: csv", "type: csvx"))
    bad("paths is a map", CSV_OK.replace("paths: [ data/people.csv ]", "paths: { a: b }"))
    bad("columns is a list", CSV_OK.replace("columns: { email: email, user_id: user_id }", "columns: [ email ]"))
    bad("columns is a string", CSV_OK.replace("columns: { email: email, user_id: user_id }", "columns: email"))
    bad("timeout is text", CSV_OK + "timeout: soon\n")
    bad("timeout negative", CSV_OK + "timeout: -5\n")
    bad("timeout zero", CSV_OK + "timeout: 0\n")
    bad("retries is text", CSV_OK + "retries: many\n")
    bad("retries negative", CSV_OK + "retries: -1\n")
    bad("header not a boolean", CSV_OK + "header: maybe\n")
    bad("delimiter two characters", CSV_OK + "delimiter: 'ab'\n")
    bad("delimiter empty", CSV_OK + "delimiter: ''\n")
    bad("log format xml", "name: bad\ntype: log\npaths: [ data/app.log ]\nformat: xml\n")
    bad("unknown erase strategy", CSV_OK + "erase: explode\n")
    bad("retain without reason", CSV_OK + "erase: retain\n")
    bad("allow_truncated is a number", "name: bad\ntype: sqldump\npaths: [ data/pg.sql ]\nallow_truncated: 5\ntables:\n  customers: { match: { email: email } }\n")
    bad("dialect unknown", "name: bad\ntype: sqldump\npaths: [ data/pg.sql ]\ndialect: oracle\ntables:\n  customers: { match: { email: email } }\n")
    bad("tables is a list", "name: bad\ntype: sqldump\npaths: [ data/pg.sql ]\ntables: [ customers ]\n")
    bad("env is a list", "name: bad\ntype: exec\ncommand: [ /bin/true ]\nenv: [ A ]\n")
    # missing things
    good("no name (the file name is the default)", CSV_OK.replace("name: bad\n", ""))
    bad("no type", CSV_OK.replace("type: csv\n", ""))
    bad("csv without paths", CSV_OK.replace("paths: [ data/people.csv ]\n", ""))
    bad("csv without columns or text", "name: bad\ntype: csv\npaths: [ data/people.csv ]\n")
    bad("sqldump without tables", "name: bad\ntype: sqldump\npaths: [ data/pg.sql ]\n")
    bad("sqldump empty tables", "name: bad\ntype: sqldump\npaths: [ data/pg.sql ]\ntables: {}\n")
    bad("empty file", "", line=False)
    bad("only comments", "# nothing here\n# at all\n", line=False)
    bad("only a document marker", "---\n", line=False)
    bad("null document", "~\n")
    bad("top-level list", "- name: bad\n  type: csv\n")
    bad("top-level scalar", "hello\n")
    bad("glob matching no file", CSV_OK.replace("data/people.csv", "data/nothing-*.csv"), run78=False)
    bad("empty paths list", CSV_OK.replace("[ data/people.csv ]", "[]"))
    bad("empty path string", CSV_OK.replace("[ data/people.csv ]", "[ '' ]"), run78=False)
    # exec commands
    bad("exec command empty list", "name: bad\ntype: exec\ncommand: []\n")
    bad("exec command empty string", "name: bad\ntype: exec\ncommand: ''\n")
    bad("exec command list with empty string", "name: bad\ntype: exec\ncommand: [ '' ]\n")
    bad("exec command blanks", "name: bad\ntype: exec\ncommand: '   '\n")
    bad("exec command missing", "name: bad\ntype: exec\n")
    bad("exec command is a map", "name: bad\ntype: exec\ncommand: { a: b }\n")
    # '' field names
    bad("empty column name", CSV_OK.replace("email: email, user_id", "'': email, user_id"))
    bad("empty text field", CSV_OK + "text: [ '' ]\n")
    bad("empty jsonl field", "name: bad\ntype: log\npaths: [ data/app.jsonl ]\nformat: jsonl\nfields: { '': email }\n")
    bad("empty table name", "name: bad\ntype: sqldump\npaths: [ data/pg.sql ]\ntables:\n  '': { match: { email: email } }\n", run78=False)
    bad("empty match column", "name: bad\ntype: sqldump\npaths: [ data/pg.sql ]\ntables:\n  customers: { match: { '': email } }\n")
    bad("empty connector name", CSV_OK.replace("name: bad", "name: ''"))
    # unknown identifier types
    bad("unknown identifier type emial", CSV_OK.replace("email: email", "email: emial"))
    bad("unknown identifier type in log match", "name: bad\ntype: log\npaths: [ data/app.log ]\nmatch: [ emial ]\n")
    bad("unknown identifier type in jsonl fields", "name: bad\ntype: log\npaths: [ data/app.jsonl ]\nformat: jsonl\nfields: { a: phon }\n")
    bad("unknown identifier type in patterns", "name: bad\ntype: log\npaths: [ data/app.log ]\npatterns: { member_card: 'MC-[0-9]{6}' }\n")
    # missing columns
    bad("csv column the header lacks", CSV_OK.replace("user_id: user_id", "mail: email"))
    bad("csv column wrong case", CSV_OK.replace("email: email", "Email: email"))
    bad("csv text column missing", CSV_OK + "text: [ notes ]\n")
    bad("csv redact column missing", CSV_OK + "erase: redact\nredact: [ nope ]\n")
    bad("sqldump table not in dump", "name: bad\ntype: sqldump\npaths: [ data/pg.sql ]\ntables:\n  clients: { match: { email: email } }\n", run78=False)
    bad("sqldump column not in table", "name: bad\ntype: sqldump\npaths: [ data/pg.sql ]\ntables:\n  customers: { match: { mail: email } }\n", run78=False)
    # regexes
    LOG = "name: bad\ntype: log\npaths: [ data/app.log ]\n"
    bad("pattern unterminated class", LOG + "match: [ { type: user_id, pattern: '/users/([0-9]+' } ]\n")
    bad("pattern unbalanced paren", LOG + "match: [ { type: user_id, pattern: '/users/([0-9]+))' } ]\n")
    bad("pattern dangling star", LOG + "match: [ { type: user_id, pattern: '*' } ]\n")
    bad("pattern without group", LOG + "match: [ { type: user_id, pattern: '/users/[0-9]+' } ]\n")
    bad("pattern empty", LOG + "match: [ { type: user_id, pattern: '' } ]\n")
    bad("patterns bad regex", LOG + "patterns: { loyalty_card: 'LC-[0-9' }\n")
    bad("patterns empty regex", LOG + "patterns: { loyalty_card: '' }\n")
    # YAML attacks
    for depth in (3, 5, 6):
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for d in range(1, depth + 1):
            lines.append("a%d: &a%d [%s]" % (d, d, ", ".join(["*a%d" % (d - 1)] * 10)))
        bad("alias bomb 10^%d" % (depth + 1), CSV_OK + "\n".join(lines) + "\n")
    bad("alias bomb inside columns", "name: bad\ntype: csv\npaths: [ data/people.csv ]\nx: &x [a, a, a, a, a, a, a, a]\ncolumns: { email: email, user_id: user_id }\ntext: [ *x, *x, *x, *x ]\n")
    bad("undefined alias", CSV_OK + "text: [ *nowhere ]\n")
    bad("merge key bomb", CSV_OK + "b: &b { k1: v, k2: v }\nc: { <<: *b }\n")
    bad("duplicate key name", CSV_OK + "name: other\n")
    bad("duplicate key in columns", CSV_OK.replace("user_id: user_id", "user_id: user_id, email: phone"))
    bad("second document", CSV_OK + "---\nname: other\ntype: csv\npaths: [ data/people.csv ]\ncolumns: { email: email }\n")
    bad("tab indentation", "name: bad\ntype: csv\npaths:\n\t- data/people.csv\ncolumns: { email: email }\n")
    bad("unclosed flow mapping", CSV_OK.replace("user_id: user_id }", "user_id: user_id"))
    bad("unterminated quote", CSV_OK.replace("name: bad", "name: 'bad"))
    bad("NUL byte", CSV_OK.replace("name: bad", "name: b\x00ad"))
    bad("non-UTF-8 byte", CSV_OK.encode().replace(b"name: bad", b"name: b\xffad"))
    bad("latin-1 description", CSV_OK.encode() + b"description: caf\xe9\n")
    bad("UTF-16 file", ("\ufeff" + CSV_OK).encode("utf-16-le"), line=False)
    bad("binary junk", bytes(RNG.getrandbits(8) for _ in range(8192)), line=False)
    bad("huge file (24 MiB of comments, no keys)", b"# " + b"x" * 1000 + b"\n", line=False)  # expanded below
    C[-1]["huge"] = 24 * MiB
    bad("directory named x.yaml", None, name="dir.yaml", line=False)
    C[-1]["special"] = "dir"
    bad("FIFO named x.yaml", None, name="fifo.yaml", line=False)
    C[-1]["special"] = "fifo"
    bad("symlink x.yaml to /dev/urandom", None, name="rand.yaml", line=False)
    C[-1]["special"] = "urandom"
    bad("dangling symlink x.yaml", None, name="gone.yaml", line=False)
    C[-1]["special"] = "dangling"
    return C


def place_connector_case(d, c):
    baseline_connector(d)   # a valid connector beside it, and its data
    write(os.path.join(d, "data", "app.log"), "GET /users/1042 200\nlogin alice@example.com\n")
    write(os.path.join(d, "data", "app.jsonl"), '{"user_id":"1042","a":"x"}\n')
    shutil.copy(os.path.join(FIXTURES, "sql", "pg_default.sql"), os.path.join(d, "data", "pg.sql"))
    p = os.path.join(d, c["name"])
    sp = c.get("special")
    if sp == "dir":
        os.mkdir(p)
    elif sp == "fifo":
        os.mkfifo(p)
    elif sp == "urandom":
        os.symlink("/dev/urandom", p)
    elif sp == "dangling":
        os.symlink(os.path.join(d, "nowhere.yaml"), p)
    elif c.get("huge"):
        line = c["text"]
        with open(p, "wb") as f:
            for _ in range(c["huge"] // len(line)):
                f.write(line)
    else:
        write(p, c["text"])
    return p


def judge_connector_case(c):
    sp = Spool("conf")
    place_connector_case(sp.connectors, c)
    fname = c["name"]
    try:
        t0 = time.time()
        rc, out, err = sp.dsar(["connectors", "check", "--connectors", sp.connectors], timeout=10)
    except Hang as h:
        return "connectors check: hang (%s)" % h
    if crashed(rc):
        return "connectors check crashed (%s)" % rcname(rc)
    text = out + err
    if c["check"] == 0:
        if rc != 0:
            return "connectors check exited %d on a valid config: %s" % (rc, last_line(text))
    else:
        if rc != 78:
            return "connectors check exited %d (expected 78)%s" % (rc, "" if rc else ": reported OK")
        if c["line"]:
            if not re.search(re.escape(fname) + r":\d+", text):
                return "connectors check does not name %s:<line>: %s" % (fname, last_line(text))
        elif fname not in text:
            return "connectors check does not name %s: %s" % (fname, last_line(text))
    # dsar run with a drop in the inbox
    body = request("CONF-1", email="alice@example.com").encode()
    target = sp.drop("conf-1.json", body)
    try:
        rc, out, err = sp.run_batch(timeout=10)
    except Hang as h:
        return "dsar run: hang (%s)" % h
    if crashed(rc):
        return "dsar run crashed (%s)" % rcname(rc)
    if c["run"] == 78:
        if rc != 78:
            return "dsar run exited %d (expected 78 before claiming anything)" % rc
        try:
            with open(target, "rb") as f:
                same = f.read() == body
        except OSError:
            same = False
        if not same or sp.records():
            return "dsar run exited 78 but did not leave the inbox untouched"
    elif c["run"] == 0:
        recs = sp.records()
        if rc != 0 or len(recs) != 1 or recs[0].get("status") != "COMPLETED":
            return "dsar run on a valid config: exit %d, jobs %s" % (rc, [r.get("status") for r in recs])
    return None


def last_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return (lines[-1][:200] if lines else "(no output)")


def area_connectors(pool):
    cases = connector_cases()
    res = list(pool.map(judge_connector_case, cases))
    return [("connectors", c["label"], r) for c, r in zip(cases, res)]


# ----------------------------------------------------------------------------------------------
# Area: corrupt sources
# ----------------------------------------------------------------------------------------------

def access_log(lines=400):
    rows = []
    for k in range(lines):
        who = "alice@example.com" if k % 50 == 7 else "user%d@example.net" % k
        rows.append('10.0.%d.%d - - [28/Nov/2026:10:%02d:00 +0000] "GET /p?e=%s HTTP/1.1" 200 %d\n'
                    % (k // 250, k % 250, k % 60, who, 1000 + k))
    return "".join(rows).encode()


def source_cases():
    """Each: label, files {relpath: bytes | special}, yaml, expect ('partial' | 'found')."""
    C = []
    LOG = "name: src\ntype: log\npaths: [ data/access.log* ]\nformat: text\nmatch: [ email ]\ntimeout: 5\nretries: 0\n"
    JL = "name: src\ntype: log\npaths: [ data/app.jsonl* ]\nformat: jsonl\nfields: { email: email }\ntimeout: 5\nretries: 0\n"
    CSV = "name: src\ntype: csv\npaths: [ data/people.csv ]\nheader: true\ndelimiter: ','\ncolumns: { email: email, user_id: user_id }\ntimeout: 5\nretries: 0\n"
    SQLT = ("name: src\ntype: sqldump\npaths: [ data/dump.sql ]\n%stimeout: 5\nretries: 0\ntables:\n"
            + SQL_TABLES.replace("%", "%%"))

    def add(label, files, yaml, expect="partial", name="alice@example.com"):
        C.append({"label": label, "files": files, "yaml": yaml, "expect": expect})

    logdata = access_log()
    gz = gzip.compress(logdata, mtime=0)
    for frac in (0.1, 0.5, 0.9):
        add("text log: gzip truncated at %d%%" % int(frac * 100), {"data/access.log": logdata[:2000], "data/access.log.1.gz": gz[:int(len(gz) * frac)]}, LOG)
    add("text log: gzip without its trailer", {"data/access.log": b"", "data/access.log.1.gz": gz[:-8]}, LOG)
    add("text log: gzip magic only", {"data/access.log.1.gz": b"\x1f\x8b"}, LOG)
    add("text log: garbage after gzip header", {"data/access.log.1.gz": gz[:10] + bytes(RNG.getrandbits(8) for _ in range(4000))}, LOG)
    mid = bytearray(gz)
    mid[len(mid) // 2] ^= 0xFF
    add("text log: flipped byte inside the deflate stream", {"data/access.log.1.gz": bytes(mid)}, LOG)
    crc = bytearray(gz)
    crc[-6] ^= 0x55
    add("text log: wrong gzip CRC", {"data/access.log.1.gz": bytes(crc)}, LOG)
    add("text log: second gzip member truncated", {"data/access.log.1.gz": gz + gz[: len(gz) // 2]}, LOG)
    jl = "".join('{"email":"%s","n":%d}\n' % ("alice@example.com" if k % 40 == 3 else "u%d@example.net" % k, k) for k in range(300)).encode()
    jgz = gzip.compress(jl, mtime=0)
    add("jsonl log: gzip truncated at 50%", {"data/app.jsonl.1.gz": jgz[: len(jgz) // 2]}, JL)
    add("jsonl log: garbage gzip", {"data/app.jsonl.1.gz": b"\x1f\x8b\x08\x00" + bytes(RNG.getrandbits(8) for _ in range(3000))}, JL)
    # CSV
    H = b"email,user_id,note\n"
    add("csv: unterminated quote in the subject's row", {"data/people.csv": H + b"bob@example.org,2001,ok\n\"alice@example.com,1042,\"oops\ncarol@example.net,2002,x\n"}, CSV)
    add("csv: stray quote at the end of file", {"data/people.csv": H + b"bob@example.org,2001,ok\nalice@example.com,1042,\"never closed\n"}, CSV)
    add("csv: field too many in the subject's row", {"data/people.csv": H + b"alice@example.com,1042,a,b\nbob@example.org,2001,ok\n"}, CSV)
    add("csv: field too few in the subject's row", {"data/people.csv": H + b"alice@example.com\nbob@example.org,2001,ok\n"}, CSV)
    add("csv: NUL bytes in the subject's row", {"data/people.csv": H + b"alice@example.com,1042,\x00\x00\x00\nbob@example.org,2001,ok\n"}, CSV, expect="found")
    add("csv: CR-only line endings", {"data/people.csv": (H + b"bob@example.org,2001,ok\nalice@example.com,1042,x\n").replace(b"\n", b"\r")}, CSV, expect="found")
    add("csv: binary junk", {"data/people.csv": bytes(RNG.getrandbits(8) for _ in range(65536))}, CSV)
    add("csv: header then binary junk", {"data/people.csv": H + bytes(RNG.getrandbits(8) for _ in range(65536)) + b"\nalice@example.com,1042,x\n"}, CSV, expect="found")
    add("csv: 16 MiB line with the subject at its end", {"data/people.csv": H + b"bob@example.org,2001," + b"y" * (16 * MiB) + b" alice@example.com\nalice@example.com,1042,x\n"}, CSV, expect="found")
    add("csv: quoted field of 8 MiB never closed", {"data/people.csv": H + b"alice@example.com,1042,\"" + b"z" * (8 * MiB)}, CSV)
    add("text log: 16 MiB line without newline, subject at the end", {"data/access.log": b"x" * (16 * MiB) + b" alice@example.com"}, LOG, expect="found")
    # SQL dumps, real tools' output cut at several points
    dumps = [("pg_dump COPY", "pg_default.sql", "dialect: postgres\n"), ("pg_dump --inserts", "pg_inserts.sql", "dialect: postgres\n"),
             ("pg_dump --column-inserts", "pg_column_inserts.sql", "dialect: postgres\n"),
             ("mysqldump extended", "mysql_default.sql", "dialect: mysql\n"), ("mysqldump --skip-extended-insert", "mysql_skip_extended.sql", "dialect: mysql\n"),
             ("sqlite3 .dump", "sqlite.sql", "dialect: sqlite\n")]
    fracs = (0.35, 0.6, 0.8, 0.97) if not QUICK else (0.6,)
    for label, fx, dialect in dumps:
        with open(os.path.join(FIXTURES, "sql", fx), "rb") as f:
            data = f.read()
        add("%s uncut (control: COMPLETED)" % label, {"data/dump.sql": data}, SQLT % dialect, expect="clean")
        for fr in fracs:
            add("%s cut at %d%%" % (label, int(fr * 100)), {"data/dump.sql": data[: int(len(data) * fr)]}, SQLT % dialect)
        # cut in the middle of the subject's row / INSERT, also with allow_truncated
        at = data.find(b"alice@example.com")
        if at > 0:
            add("%s cut inside the subject's row, allow_truncated" % label, {"data/dump.sql": data[: at + 5]}, SQLT % (dialect + "allow_truncated: true\n"))
    add("sqldump: binary junk", {"data/dump.sql": bytes(RNG.getrandbits(8) for _ in range(65536))}, SQLT % "")
    add("sqldump: a SQLite database file instead of a dump", {"data/dump.sql": "SQLITE_DB"}, SQLT % "")
    # special files
    add("text log: FIFO", {"data/access.log": "FIFO"}, LOG)
    add("csv: FIFO", {"data/people.csv": "FIFO"}, CSV)
    add("sqldump: FIFO", {"data/dump.sql": "FIFO"}, SQLT % "")
    add("text log: symlink to /dev/urandom", {"data/access.log": "->/dev/urandom"}, LOG)
    add("csv: symlink to /dev/urandom", {"data/people.csv": "->/dev/urandom"}, CSV)
    add("sqldump: symlink to /dev/urandom", {"data/dump.sql": "->/dev/urandom"}, SQLT % "")
    add("text log: symlink to /dev/zero", {"data/access.log": "->/dev/zero"}, LOG)
    add("text log: directory where a file is expected", {"data/access.log": "DIR"}, LOG)
    add("csv: directory where a file is expected", {"data/people.csv": "DIR"}, CSV)
    add("sqldump: directory where a file is expected", {"data/dump.sql": "DIR"}, SQLT % "")
    add("csv: dangling symlink", {"data/people.csv": "->/nonexistent/people.csv"}, CSV)
    if os.geteuid() != 0:
        add("csv: unreadable file (chmod 000)", {"data/people.csv": "CHMOD000"}, CSV)
    return C


def place_source(d, files):
    for rel, data in files.items():
        p = os.path.join(d, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if data == "FIFO":
            os.mkfifo(p)
        elif data == "DIR":
            os.makedirs(p)
            write(os.path.join(p, "inner.txt"), "alice@example.com\n")
        elif isinstance(data, str) and data.startswith("->"):
            os.symlink(data[2:], p)
        elif data == "SQLITE_DB":
            db = p + ".tmp.db"
            subprocess.run(["sqlite3", db, "CREATE TABLE customers (id integer, email text); INSERT INTO customers VALUES (1042, 'alice@example.com');"],
                           check=True, capture_output=True)
            os.rename(db, p)
        elif data == "CHMOD000":
            write(p, PEOPLE_CSV)
            os.chmod(p, 0)
        else:
            write(p, data)


def judge_source_case(c):
    sp = Spool("src")
    place_source(sp.connectors, c["files"])
    write(os.path.join(sp.connectors, "src.yaml"), c["yaml"])
    names = [os.path.basename(r) for r in c["files"]]
    body = request("SRC-1", email="alice@example.com", user="1042").encode()
    target = sp.drop("src-1.json", body)
    try:
        rc, out, err = sp.run_batch(timeout=25)
    except Hang as h:
        return "hang (connector timeout 5 s): %s" % h
    if crashed(rc):
        return "dsar run crashed (%s): %s" % (rcname(rc), last_line(err))
    recs = sp.records()
    if rc == 78:
        if not any(n in err for n in names):
            return "dsar run exited 78 without naming the file: %s" % last_line(err)
        if not os.path.exists(target) or recs:
            return "dsar run exited 78 but claimed the request"
        return None
    if len(recs) != 1:
        return "dsar run exited %d with %d job records" % (rc, len(recs))
    j = recs[0]
    st = j.get("status")
    why = job_text(j)
    if st == "COMPLETED":
        found = sum(int(x.get("records") or 0) for x in j.get("connectors") or [] if x.get("name") == "src")
        if c["expect"] in ("found", "clean") and found >= 1:
            return None
        return "job COMPLETED (%d records) though the source was not fully parsed" % found
    if c["expect"] == "clean":
        return "control: the intact source gave %s: %s" % (st, why[:160])
    if st not in ("PARTIAL", "FAILED"):
        return "job ended %s" % st
    if not any(n in why for n in names):
        return "job %s but its reason does not name %s: %s" % (st, "/".join(names), why[:160] or "(no reason)")
    return None


def area_sources(pool):
    cases = source_cases()
    res = list(pool.map(judge_source_case, cases))
    return [("sources", c["label"], r) for c, r in zip(cases, res)]


# ----------------------------------------------------------------------------------------------
# Area: kill -9
# ----------------------------------------------------------------------------------------------

def crash_points():
    try:
        with open(os.path.join(ROOT, "Sources", "DSARCore", "Support", "CrashPoint.swift")) as f:
            src = f.read()
        block = re.search(r"static let all = \[(.*?)\]", src, re.S).group(1)
        pts = re.findall(r'"([a-z._]+)"', block)
        if pts:
            return pts
    except (OSError, AttributeError):
        pass
    return ["claim.renamed", "claim.recorded", "job.running", "job.scanned", "publish.staged", "publish.renamed",
            "job.recorded", "job.retired", "journal.appended", "seal.writing", "erase.synced", "erase.renamed",
            "identity.written", "retry.moved"]


KILL_STATS = {"mid-run": 0, "after the end": 0, "point reached": 0, "point not reached": 0}


def kill_spool(kind):
    """A spool with a batch: 3 exports, and for 'delete' 2 deletes (erasing from a CSV and a log)."""
    sp = Spool("kill")
    rows = ["email,user_id,note"]
    for k in range(60):
        rows.append("user%d@example.net,%d,row %d" % (k, 5000 + k, k))
    write(os.path.join(sp.connectors, "data", "people.csv"), "\n".join(rows) + "\n")
    write(os.path.join(sp.connectors, "people.yaml"),
          "name: people\ntype: csv\npaths: [ data/people.csv ]\ncolumns: { email: email, user_id: user_id }\nerase: delete\n")
    log = "".join("GET /p?e=user%d@example.net 200\n" % (k % 60) for k in range(600))
    write(os.path.join(sp.connectors, "data", "access.log"), log)
    write(os.path.join(sp.connectors, "web.yaml"),
          "name: web\ntype: log\npaths: [ data/access.log* ]\nformat: text\nmatch: [ email ]\nerase: redact\n")
    rids = []
    for k in range(5):
        rid = "K-EXP-%d" % k
        sp.drop("exp-%d.json" % k, request(rid, email="user%d@example.net" % k))
        rids.append(rid)
    if kind == "delete":
        for k in range(3):
            rid = "K-DEL-%d" % k
            sp.drop("del-%d.json" % k, request(rid, email="user%d@example.net" % (10 + k), action="delete"))
            rids.append(rid)
    return sp, rids


def kill_check(sp, rids):
    try:
        rc, out, err = sp.run_batch(timeout=60)
    except Hang as h:
        return "clean run after the kill: hang (%s)" % h
    if crashed(rc):
        return "clean run after the kill crashed (%s)" % rcname(rc)
    probs = spool_problems(sp, rids)
    if probs:
        return "; ".join(probs[:3])
    try:
        rc, out, err = sp.audit_verify()
    except Hang as h:
        return "audit verify: hang"
    if rc != 0:
        return "audit verify exited %d: %s" % (rc, last_line(out + err))
    return None


def kill_random_trial(args):
    kind, delay = args
    sp, rids = kill_spool(kind)
    p = sp.start(["run", "--settle", "0", "--connectors", sp.connectors])
    time.sleep(delay)
    alive = p.poll() is None
    kill_group(p)
    KILL_STATS["mid-run" if alive else "after the end"] += 1
    try:
        p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    return kill_check(sp, rids)


def kill_point_trial(args):
    kind, point = args
    sp, rids = kill_spool(kind)
    try:
        rc, out, err = sp.run_batch(timeout=60, env={"DSAR_CRASH_AT": point})
    except Hang as h:
        return "run with DSAR_CRASH_AT=%s: hang" % point
    KILL_STATS["point reached" if rc == -signal.SIGKILL else "point not reached"] += 1
    if crashed(rc) and rc != -signal.SIGKILL:
        return "run with DSAR_CRASH_AT=%s crashed otherwise (%s)" % (point, rcname(rc))
    return kill_check(sp, rids)


def kill_retry_trial(point):
    """retry.moved: a FAILED job (its source missing), `dsar retry` killed at the point, recovery, retry, run."""
    sp = Spool("kretry")
    write(os.path.join(sp.connectors, "people.yaml"),
          "name: people\ntype: csv\npaths: [ data/people-*.csv ]\ncolumns: { email: email, user_id: user_id }\n")
    os.makedirs(os.path.join(sp.connectors, "data"))
    sp.drop("r.json", request("K-RETRY", email="alice@example.com"))
    try:
        rc, out, err = sp.run_batch(timeout=60)
        recs = sp.records()
        if len(recs) != 1 or recs[0].get("status") not in ("FAILED", "PARTIAL"):
            return "setup: the job with a missing source is %s, not FAILED" % [r.get("status") for r in recs]
        job = recs[0]["job_id"]
        write(os.path.join(sp.connectors, "data", "people-1.csv"), PEOPLE_CSV)
        rc, out, err = sp.dsar(["retry", job], env={"DSAR_CRASH_AT": point})
        rc, out, err = sp.run_batch(timeout=60)        # recovery
        if crashed(rc):
            return "run after the killed retry crashed (%s)" % rcname(rc)
        st = [r.get("status") for r in sp.records()]
        if st not in (["FAILED"], ["PARTIAL"], ["COMPLETED"]):
            return "after the killed retry and a run the job is %s" % st
        if st != ["COMPLETED"]:
            rc, out, err = sp.dsar(["retry", job])
            if rc != 0:
                return "dsar retry after recovery exited %d: %s" % (rc, last_line(err))
    except Hang as h:
        return "hang: %s" % h
    return kill_check(sp, ["K-RETRY"])


def area_kill9(pool):
    pts = crash_points()
    trials = []
    for p in pts:
        if p == "retry.moved":
            continue
        for kind in ("export", "delete"):
            trials.append(("kill9", "DSAR_CRASH_AT=%s (%s batch)" % (p, kind), kill_point_trial, (kind, p)))
    for p in ("journal.appended:3", "journal.appended:8", "journal.appended:20", "journal.appended:40",
              "claim.renamed:2", "claim.recorded:3", "job.scanned:2", "publish.renamed:2", "erase.renamed:2", "erase.synced:2"):
        trials.append(("kill9", "DSAR_CRASH_AT=%s (delete batch)" % p, kill_point_trial, ("delete", p)))
    if "retry.moved" in pts:
        trials.append(("kill9", "DSAR_CRASH_AT=retry.moved (dsar retry)", kill_retry_trial, "retry.moved"))
    # how long a clean batch takes, for the random kill times
    sp, rids = kill_spool("delete")
    t0 = time.time()
    try:
        sp.run_batch(timeout=120)
    except Hang:
        pass
    span = max(0.3, (time.time() - t0) * 1.1)
    n = 10 if QUICK else max(80, 118 - len(trials))
    if QUICK:
        trials = trials[::4]
    for k in range(n):
        kind = "delete" if k % 2 else "export"
        delay = round(RNG.uniform(0.01, span * 0.35), 3)
        trials.append(("kill9", "kill -9 at %.3f s (%s batch)" % (delay, kind), kill_random_trial, (kind, delay)))
    res = list(pool.map(lambda t: t[2](t[3]), trials))
    print("kill9: clean batch %.2f s; random kills: %d mid-run, %d after the run had ended; crash points: %d reached, %d not reached"
          % (span / 1.2, KILL_STATS["mid-run"], KILL_STATS["after the end"], KILL_STATS["point reached"], KILL_STATS["point not reached"]),
          file=sys.stderr)
    return [(a, label, r) for (a, label, _, _), r in zip(trials, res)]


# ----------------------------------------------------------------------------------------------
# Area: journal tampering
# ----------------------------------------------------------------------------------------------

def canon(e):
    return json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rehash(lines):
    """Recomputes hash and prev of every entry from the first (forging a consistent chain)."""
    out, prev = [], None
    for i, l in enumerate(lines):
        e = json.loads(l)
        if prev is not None:
            e["prev"] = prev
        e.pop("hash", None)
        h = hashlib.sha256(canon(e)).hexdigest()
        e["hash"] = h
        prev = h
        out.append(canon(e))
    return out


def journal_base():
    """A spool with two runs (two checkpoints) and a third run's entries."""
    sp = Spool("jbase")
    baseline_connector(sp.connectors)
    for r in range(2):
        for k in range(2):
            sp.drop("j%d-%d.json" % (r, k), request("J-%d-%d" % (r, k), email="user%d@example.net" % k))
        rc, out, err = sp.run_batch(timeout=60)
        if rc != 0:
            raise SystemExit("journal base run failed (%s): %s" % (rcname(rc), last_line(err)))
    return sp


def tamperings():
    T = []

    def t(label, fn):
        T.append((label, fn))

    def seg_edit(fn):
        def do(j):
            seg = segments(j)[-1]
            with open(seg, "rb") as f:
                lines = f.read().split(b"\n")
            if lines and lines[-1] == b"":
                lines = lines[:-1]
            new = fn(lines)
            with open(seg, "wb") as f:
                f.write(b"\n".join(new) + (b"\n" if new else b""))
        return do

    def flip(idx, field):
        def f(lines):
            i = idx if idx >= 0 else len(lines) + idx
            l = bytearray(lines[i])
            m = re.search(field, bytes(l))
            pos = m.start(1) if m else len(l) // 2
            c = l[pos]
            l[pos] = ord("0") if c != ord("0") else ord("1")
            if not m:
                l[pos] = c ^ 0x01
            lines[i] = bytes(l)
            return lines
        return f

    t("untouched journal (must verify OK)", None)
    for idx, where in ((0, "first"), (3, "fourth"), (-1, "last")):
        t("edit a byte in the hash of the %s entry" % where, seg_edit(flip(idx, rb'"hash":"([0-9a-f])')))
        t("edit a byte in the prev of the %s entry" % where if idx else "edit a byte in the type of the first entry",
          seg_edit(flip(idx, rb'"prev":"([0-9a-f])' if idx else rb'"type":"([a-z])')))
        t("edit a byte in the time of the %s entry" % where, seg_edit(flip(idx, rb'"time":"[0-9]{3}([0-9])')))
    t("edit a byte in the middle of an entry", seg_edit(flip(5, rb"NOMATCH()")))
    t("change a count in details", seg_edit(lambda ls: [re.sub(rb'"records":([0-9]+)', rb'"records":99', l, count=1) for l in ls]))
    t("delete the first line", seg_edit(lambda ls: ls[1:]))
    t("delete a middle line", seg_edit(lambda ls: ls[:4] + ls[5:]))
    t("delete the last line", seg_edit(lambda ls: ls[:-1]))
    t("swap two adjacent lines", seg_edit(lambda ls: ls[:2] + [ls[3], ls[2]] + ls[4:]))
    t("swap first and last lines", seg_edit(lambda ls: [ls[-1]] + ls[1:-1] + [ls[0]]))
    t("duplicate a middle line", seg_edit(lambda ls: ls[:4] + [ls[4]] + ls[4:]))
    t("duplicate the last line", seg_edit(lambda ls: ls + [ls[-1]]))
    t("append junk", seg_edit(lambda ls: ls + [b"this is not json"]))
    t("append a JSON object that is no entry", seg_edit(lambda ls: ls + [b'{"seq":999}']))
    t("change seq of a middle line", seg_edit(lambda ls: ls[:4] + [re.sub(rb'"seq":([0-9]+)', rb'"seq":777', ls[4])] + ls[5:]))
    t("change seq and recompute that entry's hash", seg_edit(lambda ls: ls[:4] + [rehash_one(ls[4], seq=777)] + ls[5:]))
    t("edit details and recompute that entry's hash", seg_edit(lambda ls: ls[:4] + [rehash_one(ls[4], details={"forged": "1"})] + ls[5:]))
    t("edit an entry and recompute the whole chain", seg_edit(lambda ls: rehash(ls[:3] + [edit_json(ls[3], type="forged.entry")] + ls[4:])))
    t("delete a line and recompute the whole chain", seg_edit(lambda ls: rehash(ls[:3] + ls[4:])))
    t("truncate to half, HEAD kept", seg_edit(lambda ls: ls[: len(ls) // 2]))
    t("truncate mid-line, HEAD kept", seg_edit(lambda ls: ls[:-1] + [ls[-1][: len(ls[-1]) // 2]]))
    t("truncate to half, HEAD rewritten to the new end", trunc_head(keep_checkpoints=True))
    t("truncate to half, HEAD rewritten, later checkpoint files deleted (audit verify --witness)", trunc_head(keep_checkpoints=False))
    t("truncate to half, HEAD deleted", lambda j: (seg_edit(lambda ls: ls[: len(ls) // 2])(j), os.remove(os.path.join(j, "HEAD"))))
    t("empty the segment", seg_edit(lambda ls: []))
    t("delete the segment (HEAD kept)", lambda j: os.remove(segments(j)[-1]))
    t("delete HEAD", lambda j: os.remove(os.path.join(j, "HEAD")))
    t("HEAD seq + 1", lambda j: edit_head(j, lambda s, h: ("%d" % (int(s) + 1), h)))
    t("HEAD with another hash", lambda j: edit_head(j, lambda s, h: (s, "0" * 64)))
    t("forge a checkpoint .txt hash", lambda j: edit_cp_txt(j, lambda txt: re.sub(rb"hash: ([0-9a-f])", lambda m: b"hash: " + (b"1" if m.group(1) != b"1" else b"2"), txt, count=1)))
    t("forge a checkpoint .txt seq", lambda j: edit_cp_txt(j, lambda txt: re.sub(rb"seq: ([0-9]+)", lambda m: b"seq: " + str(int(m.group(1)) - 1).encode(), txt, count=1)))
    t("replace a checkpoint .sig with junk", lambda j: write(checkpoint_files(j)[0] + ".sig", b"-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"))
    t("swap the .sig files of two checkpoints", swap_sigs)
    t("delete a checkpoint .sig", lambda j: os.remove(checkpoint_files(j)[0] + ".sig"))
    t("checkpoint .txt copied beyond the journal's end", copy_cp_beyond)
    t("re-sign a forged checkpoint .txt with another key", resign_cp)
    t("recompute the chain and re-sign checkpoint entries with another key", resign_chain)
    return T


def rehash_one(line, **changes):
    e = json.loads(line)
    e.update(changes)
    e.pop("hash", None)
    e["hash"] = hashlib.sha256(canon(e)).hexdigest()
    return canon(e)


def edit_json(line, **changes):
    e = json.loads(line)
    e.update(changes)
    return canon(e)


def segments(j):
    return sorted(os.path.join(j, n) for n in os.listdir(j) if n.endswith(".jsonl"))


def checkpoint_files(j):
    d = os.path.join(j, "checkpoints")
    return sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".txt"))


def edit_head(j, fn):
    p = os.path.join(j, "HEAD")
    with open(p) as f:
        s, h = f.read().split()[:2]
    s, h = fn(s, h)
    with open(p, "w") as f:
        f.write("%s %s\n" % (s, h))


def edit_cp_txt(j, fn):
    p = checkpoint_files(j)[0]
    with open(p, "rb") as f:
        txt = f.read()
    with open(p, "wb") as f:
        f.write(fn(txt))


def swap_sigs(j):
    a, b = checkpoint_files(j)[:2]
    os.rename(a + ".sig", a + ".sig.x")
    os.rename(b + ".sig", a + ".sig")
    os.rename(a + ".sig.x", b + ".sig")


def copy_cp_beyond(j):
    a = checkpoint_files(j)[-1]
    d = os.path.dirname(a)
    shutil.copy(a, os.path.join(d, "000099999.txt"))
    shutil.copy(a + ".sig", os.path.join(d, "000099999.txt.sig"))
    with open(os.path.join(d, "000099999.txt"), "rb") as f:
        txt = f.read()
    txt = re.sub(rb"seq: [0-9]+", b"seq: 99999", txt)
    with open(os.path.join(d, "000099999.txt"), "wb") as f:
        f.write(txt)
    other_key_sign(os.path.join(d, "000099999.txt"), "dsar-journal")


def other_key():
    k = os.path.join(BASE, "other-key")
    if not os.path.exists(k):
        with _counter_lock:
            if not os.path.exists(k):
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "attacker", "-f", k], check=True, capture_output=True)
    return k


def other_key_sign(path, ns):
    if os.path.exists(path + ".sig"):
        os.remove(path + ".sig")
    subprocess.run(["ssh-keygen", "-Y", "sign", "-q", "-f", other_key(), "-n", ns, path], check=True, capture_output=True)


def resign_cp(j):
    p = checkpoint_files(j)[0]
    edit_cp_txt(j, lambda txt: re.sub(rb"hash: ([0-9a-f])", lambda m: b"hash: " + (b"1" if m.group(1) != b"1" else b"2"), txt, count=1))
    other_key_sign(p, "dsar-journal")


def resign_chain(j):
    """The attacker without the spool key: edit an entry, recompute the chain, re-sign every checkpoint
    (entry signature fields and files) with their own key, rewrite HEAD."""
    seg = segments(j)[-1]
    with open(seg, "rb") as f:
        lines = [l for l in f.read().split(b"\n") if l]
    lines = lines[:3] + [edit_json(lines[3], type="forged.entry")] + lines[4:]
    out, prev = [], None
    cpdir = os.path.join(j, "checkpoints")
    for l in lines:
        e = json.loads(l)
        if prev is not None:
            e["prev"] = prev
        e.pop("hash", None)
        if e.get("type") == "checkpoint" and isinstance(e.get("details"), dict):
            txtp = os.path.join(BASE, "cp-%d-%d.txt" % (os.getpid(), e["seq"]))
            prevh = prev or ""
            msg = "dsar-journal checkpoint\nseq: %d\nhash: %s\n" % (e["seq"] - 1, prevh)
            write(txtp, msg)
            other_key_sign(txtp, "dsar-journal")
            with open(txtp + ".sig") as f:
                sig = f.read()
            for k in list(e["details"]):
                if "sig" in k:
                    e["details"][k] = sig
        e["hash"] = hashlib.sha256(canon(e)).hexdigest()
        prev = e["hash"]
        out.append(canon(e))
    with open(seg, "wb") as f:
        f.write(b"\n".join(out) + b"\n")
    last = json.loads(out[-1])
    with open(os.path.join(j, "HEAD"), "w") as f:
        f.write("%d %s\n" % (last["seq"], last["hash"]))
    for p in checkpoint_files(j):
        other_key_sign(p, "dsar-journal")


def trunc_head(keep_checkpoints):
    def do(j):
        extra = []
        if not keep_checkpoints:
            # what a witness received: every checkpoint, in the witness format (README: Witnesses);
            # without it this truncation is undetectable by design
            wit = os.path.join(os.path.dirname(j), "..", "witness.txt")
            with open(wit, "wb") as w:
                for p in checkpoint_files(j):
                    with open(p, "rb") as f:
                        w.write(f.read())
                    with open(p + ".sig", "rb") as f:
                        w.write(f.read() + b"\n")
            extra = ["--witness", os.path.abspath(wit)]
        seg = segments(j)[-1]
        with open(seg, "rb") as f:
            lines = [l for l in f.read().split(b"\n") if l]
        keep = lines[: len(lines) // 2]
        with open(seg, "wb") as f:
            f.write(b"\n".join(keep) + b"\n")
        last = json.loads(keep[-1])
        with open(os.path.join(j, "HEAD"), "w") as f:
            f.write("%d %s\n" % (last["seq"], last["hash"]))
        if not keep_checkpoints:
            for p in checkpoint_files(j):
                m = re.search(r"(\d+)\.txt$", p)
                if m and int(m.group(1)) > last["seq"]:
                    os.remove(p)
                    os.remove(p + ".sig")
        return extra
    return do


def area_journal(pool):
    base = journal_base()
    T = tamperings()
    if QUICK:
        T = T[::3]

    def one(item):
        label, fn = item
        extra = None
        sp = Spool("jt", root=None)
        shutil.rmtree(sp.root)
        shutil.copytree(base.root, sp.root, symlinks=True)
        j = sp.path("journal")
        if fn:
            try:
                for p in segments(j):
                    os.chmod(p, 0o600)
                extra = fn(j)
            except Exception as e:  # noqa: BLE001 - the tampering itself failed: count it, never pass it
                return "harness could not apply the tampering: %r" % e
        try:
            rc, out, err = sp.dsar(["audit", "verify"] + (extra if isinstance(extra, list) else []))
        except Hang:
            return "audit verify: hang"
        if crashed(rc):
            return "audit verify crashed (%s)" % rcname(rc)
        if fn is None:
            return None if rc == 0 else "audit verify of the untouched journal exited %d: %s" % (rc, last_line(out + err))
        return None if rc != 0 else "audit verify exited 0: %s" % last_line(out + err)

    res = list(pool.map(one, T))
    return [("journal", label, r) for (label, _), r in zip(T, res)]


# ----------------------------------------------------------------------------------------------
# Area: concurrency
# ----------------------------------------------------------------------------------------------

SLOW_PLUGIN = "#!/bin/sh\ncat >/dev/null\nsleep %s\n"


def slow_spool(n=3, sleep_s=2):
    sp = Spool("conc")
    baseline_connector(sp.connectors)
    write(os.path.join(sp.connectors, "slow.sh"), SLOW_PLUGIN % sleep_s, 0o755)
    write(os.path.join(sp.connectors, "slow.yaml"), "name: slow\ntype: exec\ncommand: [ ./slow.sh ]\ntimeout: 60\n")
    rids = []
    for k in range(n):
        rid = "C-%d" % k
        sp.drop("c-%d.json" % k, request(rid, email="user%d@example.net" % k))
        rids.append(rid)
    return sp, rids


def wait_for(cond, timeout=20.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return True
        time.sleep(0.05)
    return False


def running(sp):
    return any(r.get("status") == "RUNNING" for r in sp.records())


def final_check(sp, rids):
    try:
        rc, out, err = sp.run_batch(timeout=60)
    except Hang:
        return "final run: hang"
    probs = spool_problems(sp, rids)
    if probs:
        return "; ".join(probs[:3])
    rc, out, err = sp.audit_verify()
    return None if rc == 0 else "audit verify exited %d: %s" % (rc, last_line(out + err))


def conc_two_runs(wait):
    sp, rids = slow_spool()
    a = sp.start(["run", "--settle", "0", "--connectors", sp.connectors])
    try:
        if not wait_for(lambda: running(sp)):
            return "the first run never started a job"
        rc, out, err = sp.dsar(["run", "--settle", "0", "--connectors", sp.connectors] + (["--wait"] if wait else []), timeout=60)
        rca, _, erra = finish(a, 60)
    except Hang as h:
        kill_group(a)
        return "hang: %s" % h
    if crashed(rc) or crashed(rca):
        return "crash: second %s, first %s" % (rcname(rc), rcname(rca))
    if not wait and rc != 75:
        return "the second run exited %d while the first held the lock (expected 75)" % rc
    if not wait and ".lock" not in err and "lock" not in err.lower():
        return "exit 75 without naming the lock holder"
    if wait and rc != 0:
        return "run --wait behind a run exited %d" % rc
    return final_check(sp, rids)


def conc_run_vs_watch():
    sp, rids = slow_spool()
    w = sp.start(["watch", "--connectors", sp.connectors, "--settle", "0"]) if False else sp.start(["watch", "--connectors", sp.connectors])
    try:
        if not wait_for(lambda: running(sp) or sp.records(), timeout=20):
            kill_group(w)
            return "watch never claimed a request"
        rc, out, err = sp.dsar(["run", "--settle", "0", "--connectors", sp.connectors], timeout=30)
        kill_group(w, signal.SIGTERM)
        rcw, _, errw = finish(w, 60)
    except Hang as h:
        kill_group(w)
        return "hang: %s" % h
    if rc != 75:
        return "run while watch holds the lock exited %d (expected 75)" % rc
    if rcw != 0:
        return "watch after SIGTERM exited %s (expected 0)" % rcname(rcw)
    return final_check(sp, rids)


def conc_two_watches():
    sp, rids = slow_spool(1)
    w = sp.start(["watch", "--connectors", sp.connectors])
    try:
        if not wait_for(lambda: sp.records(), timeout=20):
            kill_group(w)
            return "watch never claimed a request"
        rc, out, err = sp.dsar(["watch", "--connectors", sp.connectors], timeout=15)
        kill_group(w, signal.SIGTERM)
        finish(w, 60)
    except Hang as h:
        kill_group(w)
        return "hang: %s" % h
    if rc != 75:
        return "a second watch exited %d (expected 75)" % rc
    return final_check(sp, rids)


def failed_job(sp):
    """Makes a FAILED job (its only source's glob matches nothing) and returns its id, with the fix ready."""
    write(os.path.join(sp.connectors, "gone.yaml"),
          "name: gone\ntype: csv\npaths: [ data/gone-*.csv ]\ncolumns: { email: email }\n")
    os.makedirs(os.path.join(sp.connectors, "data"), exist_ok=True)
    sp.drop("f.json", request("C-FAILED", email="alice@example.com"))
    sp.run_batch(timeout=60)
    recs = [r for r in sp.records() if r.get("request_id") == "C-FAILED"]
    write(os.path.join(sp.connectors, "data", "gone-1.csv"), "email\nnobody@example.invalid\n")
    return recs[0]["job_id"] if recs and recs[0].get("status") in ("FAILED", "PARTIAL") else None


def conc_retry_vs_run(wait):
    sp = Spool("conc")
    write(os.path.join(sp.connectors, "slow.sh"), SLOW_PLUGIN % 2, 0o755)
    job = failed_job(sp)
    if not job:
        return "setup: could not make a FAILED job"
    write(os.path.join(sp.connectors, "slow.yaml"), "name: slow\ntype: exec\ncommand: [ ./slow.sh ]\ntimeout: 60\n")
    rids = ["C-FAILED"]
    for k in range(2):
        sp.drop("c-%d.json" % k, request("C-%d" % k, email="user%d@example.net" % k))
        rids.append("C-%d" % k)
    got = {}

    def act():
        got["r"] = sp.dsar(["retry", job] + (["--wait"] if wait else []), timeout=60)

    problem = while_running(sp, act)
    if problem:
        return problem
    rc, out, err = got["r"]
    if not wait:
        if rc != 75:
            return "retry while a run holds the lock exited %d (expected 75)" % rc
        rc, out, err = sp.dsar(["retry", job])
        if rc != 0:
            return "retry after the run exited %d: %s" % (rc, last_line(err))
    elif rc != 0:
        return "retry --wait behind a run exited %d: %s" % (rc, last_line(err))
    return final_check(sp, rids)


def while_running(sp, act):
    """Starts `dsar run` on `sp`, calls act() once a job is RUNNING, lets the run finish.
    Returns None, or why the case is already incorrect (act's own answer, a run that never
    started a job, a hang)."""
    a = sp.start(["run", "--settle", "0", "--connectors", sp.connectors])
    try:
        if not wait_for(lambda: running(sp)):
            kill_group(a)
            return "the run never started a job"
        problem = act()
        if problem:
            kill_group(a)
            return problem
        finish(a, 60)
    except Hang as h:
        kill_group(a)
        return "hang: %s" % h
    return None


def conc_submit_during_run():
    sp, rids = slow_spool()
    def act():
        for k in range(3):
            rc, out, err = sp.dsar(["submit", "--action", "export", "--email", "sub%d@example.net" % k, "--request-id", "C-SUB-%d" % k])
            if rc != 0:
                return "submit during a run exited %d: %s" % (rc, last_line(err))
            rids.append("C-SUB-%d" % k)
        return None

    return while_running(sp, act) or final_check(sp, rids)


def conc_drops_during_batch():
    sp, rids = slow_spool()
    def act():
        for k in range(4):
            rid = "C-DROP-%d" % k
            body = request(rid, email="drop%d@example.net" % k).encode()
            p = os.path.join(sp.path("inbox"), "drop-%d.json" % k)
            with open(p, "wb") as f:       # written in place, in two halves
                f.write(body[: len(body) // 2])
                f.flush()
                time.sleep(0.2)
                f.write(body[len(body) // 2:])
            rids.append(rid)
        return None

    problem = while_running(sp, act)
    if problem:
        return problem
    time.sleep(0.1)
    return final_check(sp, rids)


def conc_signal(cmd, sig):
    sp, rids = slow_spool(4, 1)
    args = ["watch", "--connectors", sp.connectors] if cmd == "watch" else ["run", "--settle", "0", "--connectors", sp.connectors]
    a = sp.start(args)
    try:
        if not wait_for(lambda: running(sp)):
            kill_group(a)
            return "%s never started a job" % cmd
        time.sleep(0.3)
        kill_group(a, sig)
        rc, out, err = finish(a, 45)
    except Hang as h:
        kill_group(a)
        return "hang after %s: %s" % (signal.Signals(sig).name, h)
    if rc != 0:
        return "%s after %s exited %s (expected 0)" % (cmd, signal.Signals(sig).name, rcname(rc))
    if sp.all_files("tmp") or [n for n in sp.names("outbox", dots=True) if n.startswith(b".")]:
        return "%s left scratch or staging behind after %s" % (cmd, signal.Signals(sig).name)
    return final_check(sp, rids)


def area_concurrency(pool):
    cases = [("two runs at once: the second exits 75", lambda: conc_two_runs(False)),
             ("run --wait behind a run: queued, then runs", lambda: conc_two_runs(True)),
             ("run while watch holds the lock: 75", conc_run_vs_watch),
             ("two watches at once: the second exits 75", conc_two_watches),
             ("retry while a run holds the lock: 75", lambda: conc_retry_vs_run(False)),
             ("retry --wait behind a run: queued", lambda: conc_retry_vs_run(True)),
             ("submit during a run", conc_submit_during_run),
             ("drops written in place during a batch", conc_drops_during_batch),
             ("SIGTERM to watch mid-batch", lambda: conc_signal("watch", signal.SIGTERM)),
             ("SIGINT to run mid-batch", lambda: conc_signal("run", signal.SIGINT)),
             ("SIGTERM to run mid-batch", lambda: conc_signal("run", signal.SIGTERM))]
    res = list(pool.map(lambda c: c[1](), cases))
    return [("concurrency", label, r) for (label, _), r in zip(cases, res)]


# ----------------------------------------------------------------------------------------------
# Area: disk full
# ----------------------------------------------------------------------------------------------

DF_NOTES = []


def area_diskfull(pool):
    mnt_root = new_dir("diskfull")
    probe = os.path.join(mnt_root, "probe")
    os.makedirs(probe)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], capture_output=True, text=True)
    if r.returncode != 0:
        print("diskfull: SKIPPED — mount -t tmpfs is not permitted here (%s); run as root with CAP_SYS_ADMIN"
              % (r.stderr.strip() or r.returncode), file=sys.stderr)
        return None
    subprocess.run(["umount", probe], capture_output=True)
    levels = [("export", 0), ("export", 4 * KiB), ("export", 64 * KiB), ("export", 256 * KiB), ("export", 768 * KiB),
              ("export", 2 * MiB), ("export", 4 * MiB), ("export", 7 * MiB), ("delete", 0), ("delete", 64 * KiB),
              ("delete", 1 * MiB), ("delete", 3 * MiB), ("mixed", 2 * MiB)]
    if QUICK:
        levels = levels[::3]
    res = list(pool.map(lambda a: diskfull_case(*a), levels))
    for n in sorted(DF_NOTES):
        print("diskfull: " + n, file=sys.stderr)
    return [("diskfull", "%s, %s free on a 16 MiB tmpfs" % (k, human(free)), r)
            for (k, free), r in zip(levels, res)]


def human(n):
    return "%d MiB" % (n // MiB) if n >= MiB and n % MiB == 0 else ("%d KiB" % (n // KiB) if n else "0 B")


def diskfull_case(kind, free):
    d = new_dir("df")
    mnt = os.path.join(d, "mnt")
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        return "mount failed: %s" % r.stderr.strip()
    try:
        return diskfull_inner(kind, free, d, mnt)
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def diskfull_inner(kind, free, d, mnt):
    sp = Spool("dfs", root=os.path.join(mnt, "spool"))
    # a source with many rows of the subject (incompressible), on the tmpfs for deletes (the erasure
    # rewrites it there), outside for exports
    src_dir = os.path.join(mnt, "data") if kind != "export" else os.path.join(sp.connectors, "data")
    rows = ["email,user_id,note"]
    rr = random.Random(free)
    for k in range(6000):
        who = "big@example.net" if k % 2 == 0 else "other%d@example.net" % k
        rows.append("%s,%d,%s" % (who, 7000 + k, "%064x" % rr.getrandbits(256)))
    write(os.path.join(src_dir, "people.csv"), "\n".join(rows) + "\n")
    write(os.path.join(sp.connectors, "people.yaml"),
          "name: people\ntype: csv\npaths: [ %s ]\ncolumns: { email: email, user_id: user_id }\ntext: [ note ]\nerase: delete\n"
          % os.path.join(src_dir, "people.csv"))
    rids = []
    acts = {"export": ["export", "export"], "delete": ["delete"], "mixed": ["export", "delete"]}[kind]
    for k, act in enumerate(acts):
        rid = "DF-%d" % k
        sp.drop("df-%d.json" % k, request(rid, email="big@example.net", action=act))
        rids.append(rid)
    filler = os.path.join(mnt, "filler")
    st = os.statvfs(mnt)
    avail = st.f_bavail * st.f_frsize
    with open(filler, "wb") as f:
        want = max(0, avail - free)
        chunk = b"\0" * MiB
        try:
            while want > 0:
                n = min(len(chunk), want)
                f.write(chunk[:n])
                want -= n
            f.flush()
        except OSError:
            pass
    try:
        rc, out, err = sp.run_batch(timeout=60)
    except Hang as h:
        return "hang: %s" % h
    if crashed(rc):
        return "dsar run crashed on a full disk (%s): %s" % (rcname(rc), last_line(err))
    # judge the state on the full disk
    recs = sp.records()
    DF_NOTES.append("%s %s free: exit %d, jobs %s%s" % (kind, human(free), rc, [r.get("status") for r in recs],
                    " (ENOSPC reported)" if "No space left" in err or any("No space left" in job_text(r) for r in recs) else ""))
    for j in recs:
        st_ = j.get("status")
        if st_ in ("FAILED", "PARTIAL"):
            if "No space left on device" not in job_text(j) and "ENOSPC" not in job_text(j):
                return "job %s %s without a \"No space left on device\" reason: %s" % (j.get("request_id"), st_, job_text(j)[:140])
    for n in sp.names("outbox"):
        e = os.path.join(os.fsencode(sp.path("outbox")), n)
        files = set(os.listdir(e)) if os.path.isdir(e) else set()
        if b"manifest.json" not in files or b"manifest.json.sig" not in files:
            return "half-published outbox entry %s: %s" % (os.fsdecode(n), sorted(os.fsdecode(x) for x in files))
    if rc not in (0, 1, 74):
        return "dsar run on a full disk exited %d" % rc
    # free the space, recover, verify
    os.remove(filler)
    try:
        rc2, out2, err2 = sp.run_batch(timeout=60)
    except Hang:
        return "run after freeing space: hang"
    if crashed(rc2):
        return "run after freeing space crashed (%s)" % rcname(rc2)
    recs = sp.records()
    br = by_request(recs)
    for rid in rids:
        js = br.get(rid, [])
        if len(js) > 1:
            return "request %s has %d jobs" % (rid, len(js))
        if not js:
            return "request %s lost (no job after space was freed)" % rid
        if js[0].get("status") not in ("COMPLETED", "FAILED", "PARTIAL"):
            return "request %s is %s after a clean run" % (rid, js[0].get("status"))
    completed = {r["job_id"] for r in recs if r.get("status") == "COMPLETED"}
    outbox = {os.fsdecode(n) for n in sp.names("outbox", dots=True)}
    if {n for n in outbox if not n.startswith(".")} != completed or any(n.startswith(".") for n in outbox):
        return "outbox entries differ from completed jobs after recovery: %s" % sorted(outbox)
    if sp.all_files("active") or sp.all_files("tmp") or sp.all_files("inbox"):
        return "inbox/active/tmp not empty after recovery"
    rc3, out3, err3 = sp.audit_verify()
    if rc3 != 0:
        return "audit verify after freeing space exited %d: %s" % (rc3, last_line(out3 + err3))
    return None


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------

RUNNERS = {"requests": area_requests, "connectors": area_connectors, "sources": area_sources, "kill9": area_kill9,
           "journal": area_journal, "concurrency": area_concurrency, "diskfull": area_diskfull}
TITLES = {"requests": "bad request files", "connectors": "bad connector configs", "sources": "corrupt sources",
          "kill9": "kill -9 trials", "journal": "journal tamperings", "concurrency": "concurrency", "diskfull": "disk full"}


def main():
    global BIN, BASE, QUICK
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build", "debug", "dsar"), help="the dsar binary")
    ap.add_argument("--only", default="", help="comma-separated areas: " + ", ".join(AREAS))
    ap.add_argument("--quick", action="store_true", help="a subset of every area")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    ap.add_argument("--seed", type=int, default=13, help="seed for junk bytes and kill times")
    ap.add_argument("--out", default="", help="also write the report (markdown) to this file")
    a = ap.parse_args()
    BIN = os.path.abspath(a.bin)
    if not os.access(BIN, os.X_OK):
        sys.exit("no dsar binary at %s (make redteam builds it)" % BIN)
    QUICK = a.quick
    RNG.seed(a.seed)
    areas = [x.strip() for x in a.only.split(",") if x.strip()] or AREAS
    for x in areas:
        if x not in AREAS:
            sys.exit("unknown area %r (one of %s)" % (x, ", ".join(AREAS)))
    BASE = tempfile.mkdtemp(prefix="dsar-redteam-")
    os.chmod(BASE, 0o755)
    make_template(BASE)
    results, skipped = [], []
    t0 = time.time()
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
            for area in areas:
                ta = time.time()
                r = RUNNERS[area](pool)
                if r is None:
                    skipped.append(area)
                    continue
                results += r
                bad = sum(1 for x in r if x[2])
                print("%-12s %4d cases, %4d incorrect, %5.1f s" % (area, len(r), bad, time.time() - ta), file=sys.stderr, flush=True)
    finally:
        if a.keep:
            print("temp dirs kept in %s" % BASE, file=sys.stderr)
        else:
            shutil.rmtree(BASE, ignore_errors=True)
    lines = ["| area | tried | correct | incorrect |", "|------|------:|--------:|----------:|"]
    for area in areas:
        if area in skipped:
            lines.append("| %s | skipped | | |" % TITLES[area])
            continue
        r = [x for x in results if x[0] == area]
        bad = sum(1 for x in r if x[2])
        lines.append("| %s | %d | %d | %d |" % (TITLES[area], len(r), len(r) - bad, bad))
    tot = len(results)
    totbad = sum(1 for x in results if x[2])
    lines.append("| **total** | %d | %d | %d |" % (tot, tot - totbad, totbad))
    lines.append("")
    if totbad:
        lines.append("Incorrect cases:")
        lines.append("")
        for area, label, why in results:
            if why:
                lines.append("- %s: %s — %s" % (area, label, " ".join(str(why).split())))
    else:
        lines.append("Every case correct.")
    lines.append("")
    lines.append("(%.0f s, binary %s%s)" % (time.time() - t0, BIN, ", --quick" if QUICK else ""))
    report = "\n".join(lines)
    print(report)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report + "\n")
    sys.exit(1 if totbad else 0)


if __name__ == "__main__":
    main()
