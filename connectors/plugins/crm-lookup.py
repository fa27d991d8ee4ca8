#!/usr/bin/env python3
"""Example dsar exec plugin: looks a subject up in a small JSON "CRM" file.

Protocol: one JSON request on stdin ({"protocol": 1, "action": "export"|"delete", "dry_run": bool,
"job_id": ..., "identifiers": [{"type": ..., "value": ...}]}); for export, one JSON line per record
on stdout ({"table": ..., "record": {...}, "identifiers": [...]}); for delete, one JSON line
{"deleted": N, "remaining": N}. Diagnostics on stderr; exit 0 on success.
"""
import json, os, sys, tempfile

def write_atomically(path, value):
    """Writes `value` as JSON to a temp file beside `path`, fsyncs it and renames it over `path`.
    On any failure (a full disk included) the temp file is removed and the error re-raised."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".crm-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise

def main():
    db_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", sys.argv[1])
    req = json.load(sys.stdin)
    wanted = {(i["type"], i["value"]) for i in req["identifiers"]}
    with open(db_path, encoding="utf-8") as f:
        contacts = json.load(f)

    def matches(c):
        return ("email", c.get("email", "").lower()) in wanted or ("user_id", str(c.get("user_id", ""))) in wanted

    hits = [c for c in contacts if matches(c)]
    if req["action"] == "export":
        for c in hits:
            ids = [{"type": "user_id", "value": str(c["user_id"])}] if "user_id" in c else []
            print(json.dumps({"table": "contacts", "record": c, "identifiers": ids}))
    elif req["action"] == "delete":
        if not req.get("dry_run"):
            keep = [c for c in contacts if not matches(c)]
            try:
                write_atomically(db_path, keep)
            except OSError as e:
                # e.g. ENOSPC: the CRM file is unchanged and no temp file is left behind.
                print(f"crm-lookup: cannot rewrite {db_path}: {e.strerror or e}", file=sys.stderr)
                return 1
        remaining = 0 if not req.get("dry_run") else len(hits)
        print(json.dumps({"deleted": len(hits) if not req.get("dry_run") else 0, "remaining": remaining}))
    else:
        print(f"unknown action {req['action']}", file=sys.stderr)
        return 2
    print(f"crm-lookup: {len(hits)} contact(s) for job {req['job_id']}", file=sys.stderr)
    return 0

if __name__ == "__main__":
    sys.exit(main())
