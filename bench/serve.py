"""HTTP API benchmark (`make bench`, or `bench.py --serve-only`): `wrk` against the real `dsar serve`.

On a fresh spool (`serve: {auth: none, rate_limit: 0}`), on loopback, with the release binary:

- POST /dsar: every request a new body (a wrk Lua script numbers the user_id per thread), so every
  202 is a new request file written durably into inbox/ (temp file, fsync, rename, fsync of inbox/);
  afterwards the inbox must hold at least as many request files as wrk counted 202s;
- GET /dsar/{jobId}: the record of one COMPLETED job (`dsar run` over one request first), which the
  server reads from jobs/ and sends as `dsar status JOB --json` prints it.

Requests/s and latency percentiles come from wrk's own `done()` summary (JSON from the Lua script).
A section for RESULTS.md is returned; `python3 bench/serve.py --bin DSAR` runs it alone.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HEADING = "## HTTP API (`dsar serve`, wrk)"
GOAL_SUBMIT = 2000
GOAL_STATUS = 10000

# Prints wrk's summary as one JSON line (latency in microseconds).
DONE = r"""
done = function(summary, latency, requests)
  local s = summary
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d, "mean": %.1f}\n',
    s.requests, s.duration, s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""

# A new body per request: user_id = <run><thread><counter>, digits only.
SUBMIT = r"""
local threads = {}
local next_id = 0
setup = function(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"user_id": "%s%02d%09d", "action": "export"}', RUN, tid, counter)
  return wrk.format("POST", "/dsar", {["Content-Type"] = "application/json"}, body)
end
"""


def run_ok(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit("bench serve: %s failed (%d): %s" % (" ".join(argv), r.returncode, r.stderr[-2000:]))
    return r.stdout


def make_spool(dsar, where):
    """dsar init + keygen + recipients, `serve: {auth: none, rate_limit: 0}`, one small CSV connector."""
    shutil.rmtree(where, ignore_errors=True)
    os.makedirs(where)
    spool, team, conn = (os.path.join(where, d) for d in ("spool", "team-keys", "connectors"))
    run_ok([dsar, "init", "--spool", spool, "--log-format", "json"])
    run_ok([dsar, "keygen", "--out", team])
    recipient = open(os.path.join(team, "age.pub")).read().strip()
    with open(os.path.join(spool, "config.yaml"), "w") as f:
        f.write("recipients: [ %s ]\nserve:\n  auth: none\n  rate_limit: 0\n" % recipient)
    os.makedirs(os.path.join(conn, "data"))
    with open(os.path.join(conn, "data", "people.csv"), "w") as f:
        f.write("email,user_id\nnobody@example.invalid,999999999\n")
    with open(os.path.join(conn, "people.yaml"), "w") as f:
        f.write("name: people\ntype: csv\npaths: [ data/people.csv ]\ncolumns: { email: email, user_id: user_id }\n")
    return spool, conn


class Server:
    def __init__(self, dsar, spool, logdir):
        self.out = open(os.path.join(logdir, "serve.out"), "w+")
        self.err = open(os.path.join(logdir, "serve.err"), "w+")
        self.p = subprocess.Popen([dsar, "serve", "--spool", spool, "--listen", "127.0.0.1:0", "--log-format", "json"],
                                  stdout=self.out, stderr=self.err)
        deadline = time.time() + 30
        self.url = None
        while time.time() < deadline and self.p.poll() is None:
            self.out.seek(0)
            for line in self.out.read().splitlines():
                if line.startswith("listening on "):
                    self.url = line[len("listening on "):].strip()
            if self.url:
                break
            time.sleep(0.05)
        if not self.url:
            self.stop()
            self.err.seek(0)
            raise SystemExit("bench serve: dsar serve did not start: %s" % self.err.read()[-2000:])

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


def post(url, body):
    req = urllib.request.Request(url + "/dsar", data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())


def wrk(url, script, threads, connections, seconds, logdir, tag, profile_pid=None):
    path = os.path.join(logdir, tag + ".lua")
    with open(path, "w") as f:
        f.write(script + DONE)
    argv = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--timeout", "10s", "-s", path, url]
    perf = None
    if profile_pid and shutil.which("perf"):
        perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(profile_pid), "-o",
                                 os.path.join(logdir, tag + ".perf.data"), "--", "sleep", str(max(1, seconds - 1))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = run_ok(argv, timeout=seconds + 60)
    if perf:
        perf.wait()
    with open(os.path.join(logdir, tag + ".out"), "w") as f:
        f.write(out)
    line = [l for l in out.splitlines() if l.startswith("WRKJSON ")]
    if not line:
        raise SystemExit("bench serve: no summary from wrk:\n" + out)
    s = json.loads(line[-1][len("WRKJSON "):])
    s["rps"] = s["requests"] / (s["duration_us"] / 1e6)
    s["errors"] = s["connect"] + s["read"] + s["write"] + s["timeout"]
    return s


def perf_top(logdir, tag, n=30):
    """Inclusive time (children included) by symbol, ≥ 5 %, demangled: where the server's CPU went."""
    data = os.path.join(logdir, tag + ".perf.data")
    if not os.path.exists(data):
        return None
    r = subprocess.run(["perf", "report", "-i", data, "--children", "--percent-limit", "5", "--stdio",
                        "--sort", "symbol", "-g", "none"], capture_output=True, text=True)
    lines = [l.rstrip() for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
    text = "\n".join(lines[:n])
    if shutil.which("swift"):
        d = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input=text, capture_output=True,
                           text=True)
        if d.returncode == 0 and d.stdout:
            text = d.stdout
    return "\n".join(l[:160].rstrip() for l in text.splitlines())


def wrk_version():
    r = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    words = (r.stdout + r.stderr).split()
    return " ".join(words[:2]) if words else "wrk"


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return "%d × %s" % (os.cpu_count() or 0, cpu)


def median(runs):
    """The run with the median requests/s, with every run's requests/s beside it."""
    best = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    return dict(best, all_rps=[r["rps"] for r in runs])


def run(dsar, work, seconds=10, connections=32, threads=2, profile=False, runs=3):
    """Both measurements on a fresh spool; returns the RESULTS.md section."""
    if not shutil.which("wrk"):
        raise SystemExit("bench serve: wrk is missing (apt-get install wrk)")
    load = os.getloadavg()[0]
    where = os.path.join(work, "serve")
    logdir = os.path.join(where, "logs")
    spool, conn = make_spool(dsar, where)
    os.makedirs(logdir)

    # One COMPLETED job for the status reads.
    server = Server(dsar, spool, logdir)
    status, answer = post(server.url, '{"user_id": "4711", "action": "export"}')
    assert status == 202, (status, answer)
    job = answer["jobId"]
    server.stop()
    run_ok([dsar, "run", "--settle", "0", "--connectors", conn, "--spool", spool, "--log-format", "json"])
    record = json.loads(run_ok([dsar, "status", job, "--json", "--spool", spool, "--log-format", "json"]))
    assert record["status"] == "COMPLETED", record["status"]

    server = Server(dsar, spool, logdir)
    pid = server.p.pid
    inbox = os.path.join(spool, "inbox")
    before = len([n for n in os.listdir(inbox) if not n.startswith(".")])
    print("bench serve: POST /dsar, %d s, %d connections …" % (seconds, connections), flush=True)
    subs = [wrk(server.url, "RUN = '%d'\n" % (int(time.time()) % 90 + 10 + i) + SUBMIT, threads, connections,
                seconds, logdir, "submit" if i == 0 else "submit%d" % i, pid if profile and i == 0 else None)
            for i in range(runs)]
    sub = median(subs)
    print("bench serve: GET /dsar/{jobId}, %d s, %d connections …" % (seconds, connections), flush=True)
    gets = [wrk(server.url + "/dsar/" + job, "", threads, connections, seconds, logdir,
                "status" if i == 0 else "status%d" % i, pid if profile and i == 0 else None) for i in range(runs)]
    get = median(gets)
    # The answer is still the record (not an error page) after the load.
    with urllib.request.urlopen(server.url + "/dsar/" + job, timeout=30) as r:
        same = json.loads(r.read()) == record
    code = server.stop()
    # After the graceful stop: every request in flight has finished (or was never written).
    written = len([n for n in os.listdir(inbox) if not n.startswith(".")]) - before
    temps = [n for n in os.listdir(inbox) if n.startswith(".")]
    server.err.seek(0)
    failed = sum(1 for l in server.err if '"request failed"' in l)

    ok_sub = sum(x["requests"] - x["status"] for x in subs)
    us = lambda v: "%.2f ms" % (v / 1000)
    rows = [
        ("POST /dsar (new request, fsync before 202)", sub, GOAL_SUBMIT),
        ("GET /dsar/{jobId} (COMPLETED record)", get, GOAL_STATUS),
    ]
    table = ["| route | requests/s (median) | min–max requests/s | p50 | p90 | p99 | max | non-2xx | socket errors "
             "| goal | met? |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, s, goal in rows:
        table.append("| %s | %.0f | %.0f–%.0f | %s | %s | %s | %s | %d | %d | ≥ %d/s | %s |" % (
            name, s["rps"], min(s["all_rps"]), max(s["all_rps"]), us(s["p50"]), us(s["p90"]), us(s["p99"]),
            us(s["max"]), s["status"], s["errors"], goal, "yes" if s["rps"] >= goal else "**no**"))
    checks = [
        "- inbox: %d request files written for %d answers without an error (must be ≥: a 202 is only sent after "
        "the fsyncs; requests still in flight when wrk stopped may add a few), %d temp files left after the stop" % (
            written, ok_sub, len(temps)),
        "- GET after the load answers the same record as `dsar status JOB --json`: %s" % ("yes" if same else "**no**"),
        "- server: %d \"request failed\" log lines; exit %s after SIGTERM" % (failed, code),
    ]
    if written < ok_sub or not same or failed or code != 0 or temps:
        checks.append("- **a check failed: the numbers above are not trustworthy**")
    text = "\n".join([
        HEADING, "",
        "Written by `make bench` (bench/serve.py; `python3 bench/bench.py --serve-only` runs only this).",
        "The release `dsar serve` on 127.0.0.1 with `serve: {auth: none, rate_limit: 0}` and the default log level",
        "(one JSON log line per submit), against `wrk -t%d -c%d -d%ds` on the same %s (wrk and the server share"
        % (threads, connections, seconds, machine()),
        "the cores), %d runs per route on one server; the latencies are those of the median run." % runs,
        "Latency as wrk measures it (from sending the request to the last byte of the answer).",
        "Date: %s; %s; load average before the run %.2f (1 min; other work on the machine lowers the numbers)."
        % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), wrk_version(), load),
        "",
    ] + table + ["", "Checks:", ""] + checks)
    if profile:
        for tag, name in (("submit", "POST /dsar"), ("status", "GET /dsar/{jobId}")):
            top = perf_top(logdir, tag)
            if top:
                text += "\n\n`perf record -g` of the server during %s (time including callees, by symbol, ≥ 5 %%):\n\n```\n%s\n```" % (
                    name, top)
    return text + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--profile", action="store_true", help="perf record the server during each load")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dsar-bench-serve-")
    try:
        print(run(os.path.abspath(a.bin), work, a.seconds, a.connections, profile=a.profile))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
