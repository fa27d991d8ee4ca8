#!/usr/bin/env python3
"""Checks on `dsar serve --print-openapi` for Tests/DSARE2ETests/ServeOpenAPIE2ETests.swift.

    openapi_check.py ops SPEC.yaml
        parses SPEC as YAML and prints JSON: {"openapi", "operations": ["GET /dsar/{jobId}", ...],
        "security": {"GET /dsar/{jobId}": ["dsar:read"], ...} (null: no security requirement),
        "problems": [...]} where problems lists what breaks the house rules of the document
        (an error response that is not problem+json, a 429 without Retry-After, a $ref to nowhere).

    openapi_check.py check SPEC.yaml EXCHANGES.json
        validates real exchanges against the document with jsonschema_rs (JSON Schema 2020-12, as
        OpenAPI 3.1 uses it). EXCHANGES is a list of {"method", "path" (the template, e.g.
        "/dsar/{jobId}"), "status", "headers" (lower-case names), "body"} and of {"request": BODY,
        "valid": bool} (a POST /dsar body that must or must not match the Request schema). A
        method the path does not document must answer 405 (components.responses.MethodNotAllowed).
        Prints every mismatch; exits 1 when there is one.
"""

import json
import sys

import yaml

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def resolve(spec, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise SystemExit("external $ref %s" % ref)
        cur = spec
        for part in ref[2:].split("/"):
            cur = cur[part]
        node = cur
        seen += 1
        if seen > 20:
            raise SystemExit("$ref loop at %s" % ref)
    return node


def refs(node, out):
    if isinstance(node, dict):
        if "$ref" in node:
            out.append(node["$ref"])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def ops(spec_path):
    spec = yaml.safe_load(open(spec_path))
    operations, security, problems = [], {}, []
    default_security = spec.get("security")
    for path, item in spec.get("paths", {}).items():
        for m in METHODS:
            op = item.get(m)
            if op is None:
                continue
            name = "%s %s" % (m.upper(), path)
            operations.append(name)
            sec = op.get("security", default_security)
            security[name] = sorted({s for req in sec for v in req.values() for s in v}) if sec else None
            for status, resp in op.get("responses", {}).items():
                resp = resolve(spec, resp)
                code = int(status)
                if code >= 400:
                    content = resp.get("content", {})
                    if list(content) != ["application/problem+json"]:
                        problems.append("%s %s: content %s, expected only application/problem+json" % (
                            name, status, list(content)))
                if code == 429 and "Retry-After" not in resp.get("headers", {}):
                    problems.append("%s 429 has no Retry-After header" % name)
    found = []
    refs(spec, found)
    for ref in found:
        try:
            resolve(spec, {"$ref": ref})
        except (KeyError, TypeError):
            problems.append("$ref %s points nowhere" % ref)
    print(json.dumps({"openapi": spec.get("openapi"), "operations": sorted(operations), "security": security,
                      "problems": problems,
                      "responses": sorted(spec.get("components", {}).get("responses", {})),
                      "schemes": spec.get("components", {}).get("securitySchemes", {})}))


def check(spec_path, exchanges_path):
    import jsonschema_rs

    spec = yaml.safe_load(open(spec_path))
    components = {"components": spec.get("components", {})}

    def validate(schema, value):
        v = jsonschema_rs.Draft202012Validator(dict(schema, **components), validate_formats=True)
        return [e.message for e in v.iter_errors(value)]

    failures, n = [], 0
    for ex in json.load(open(exchanges_path)):
        n += 1
        if "request" in ex:
            body = spec["paths"]["/dsar"]["post"]["requestBody"]["content"]["application/json"]["schema"]
            errors = validate(body, ex["request"])
            if ex["valid"] and errors:
                failures.append("request %s: does not match Request: %s" % (json.dumps(ex["request"]), errors))
            if not ex["valid"] and not errors:
                failures.append("request %s: matches Request, yet dsar rejects it" % json.dumps(ex["request"]))
            continue
        name = "%s %s -> %d" % (ex["method"], ex["path"], ex["status"])
        item = spec["paths"].get(ex["path"])
        if item is None:
            failures.append("%s: path not documented" % name)
            continue
        op = item.get(ex["method"].lower())
        if op is None:
            if ex["status"] != 405:
                failures.append("%s: method not documented, and the answer is not 405" % name)
                continue
            resp = resolve(spec, spec["components"]["responses"]["MethodNotAllowed"])
        else:
            resp = op.get("responses", {}).get(str(ex["status"]))
            if resp is None:
                failures.append("%s: status not documented (documented: %s)" % (name, sorted(op["responses"])))
                continue
            resp = resolve(spec, resp)
        headers = ex.get("headers", {})
        for h, hspec in resp.get("headers", {}).items():
            hspec = resolve(spec, hspec)
            if hspec.get("required") and h.lower() not in headers:
                failures.append("%s: required header %s missing (got %s)" % (name, h, sorted(headers)))
            elif h.lower() in headers and resolve(spec, hspec.get("schema", {})).get("type") == "integer":
                if not headers[h.lower()].isdigit():
                    failures.append("%s: header %s is %r, not an integer" % (name, h, headers[h.lower()]))
        content = resp.get("content", {})
        if not content:
            continue
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        media = content.get(ctype)
        if media is None:
            failures.append("%s: content type %r not documented (documented: %s)" % (name, ctype, list(content)))
            continue
        schema = media.get("schema", {})
        if ctype.endswith("json"):
            try:
                value = json.loads(ex["body"])
            except ValueError as e:
                failures.append("%s: body is not JSON (%s): %r" % (name, e, ex["body"][:200]))
                continue
        else:
            value = ex["body"]
        errors = validate(schema, value)
        if errors:
            failures.append("%s: body does not match its schema: %s\n  body: %s" % (name, errors[:5], ex["body"][:600]))
    for f in failures:
        print("MISMATCH " + f)
    print("%d exchanges checked, %d mismatches" % (n, len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "ops":
        ops(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)
