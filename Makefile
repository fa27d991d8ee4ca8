# dsar — make demo: everything on a fresh machine; make test: build and run every test.
SWIFT      ?= swift
SPOOL      ?= $(CURDIR)/spool
CONNECTORS ?= $(CURDIR)/connectors
BIN        := $(CURDIR)/.build/debug/dsar
# Debian packages the build, the demo and the tests use (installed when missing and run as root).
APT_BUILD  := libarchive-dev zlib1g-dev pkg-config libpq-dev libmariadb-dev libsqlite3-dev
APT_TOOLS  := age libarchive-tools unzip sqlite3 openssh-client time python3 gzip
APT        := $(APT_BUILD) $(APT_TOOLS)
# Extra oracles only the tests use (real databases and an SFTP server); tests skip, naming the
# package, when one is missing and make is not run as root.
APT_TEST   := postgresql mariadb-server mariadb-client openssh-server python3-prometheus-client acl chromium curl \
              python3-yaml python3-pip

.PHONY: all deps pydeps build test demo screenshot bench redteam lint clean

all: build

deps:
	@missing=""; for p in $(APT) $(EXTRA_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing — run: sudo apt-get install$$missing"; exit 1; fi; \
	fi

build: deps
	$(SWIFT) build

# PyPI packages the tests use: pyspark (Spark in local mode, on the machine's Java 17) for `type: spark`,
# schemathesis for the HTTP API. Installed when missing and run as root; the tests skip, naming what
# is missing, otherwise.
PIP_TEST   := pyspark==3.5.7 schemathesis==4.32.5

pydeps:
	@missing=""; for p in $(PIP_TEST); do /usr/bin/python3 -m pip show -q $${p%%==*} >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing from PyPI:$$missing"; /usr/bin/python3 -m pip install --break-system-packages -q $$missing; \
	  else echo "missing PyPI packages:$$missing — run: sudo /usr/bin/python3 -m pip install --break-system-packages$$missing"; fi; \
	fi

test: EXTRA_APT = $(APT_TEST)
test: deps pydeps lint
	$(SWIFT) build --build-tests
	$(SWIFT) test

# The whole pipeline on the sample data in connectors/: keys, config, requests, run, status, and
# the bundle opened with age and verified with ssh-keygen. Running it again works.
demo: build
	@set -e; \
	d() { "$(BIN)" "$$@" --spool "$(SPOOL)"; }; \
	d init >/dev/null; \
	TEAM="$(SPOOL)/demo-team-keys"; \
	echo "== privacy team keys (demo only: in production the team keeps age.key, you get only age.pub)"; \
	"$(BIN)" keygen --out "$$TEAM" >/dev/null; \
	if grep -q '^require_signed_requests: true' "$(SPOOL)/config.yaml"; then \
	  sed -i 's/^require_signed_requests: true.*/require_signed_requests: false   # DEMO ONLY: production spools require signed requests/' "$(SPOOL)/config.yaml"; fi; \
	echo "== demo: signed requests are turned OFF in $(SPOOL)/config.yaml (a new spool requires them)"; \
	if ! grep -q '^recipients:' "$(SPOOL)/config.yaml"; then \
	  printf 'recipients: [ demo-team-keys/age.pub ]\n' >> "$(SPOOL)/config.yaml"; fi; \
	echo "   recipient: $$(cat $$TEAM/age.pub)"; \
	echo "== copying the sample connectors and data into $(SPOOL)/demo (the repository copy stays untouched)"; \
	rm -rf "$(SPOOL)/demo"; mkdir -p "$(SPOOL)/demo"; cp -r connectors "$(SPOOL)/demo/"; \
	gzip -f "$(SPOOL)/demo/connectors/sample-data/logs/access.log.1"; \
	C="$(SPOOL)/demo/connectors"; \
	sqlite3 "$$C/sample-data/app.db" < "$$C/sample-data/app.sql"; rm -f "$$C/sample-data/app.sql"; \
	d connectors check --connectors "$$C"; \
	stamp=$$(date -u +%Y%m%dT%H%M%S); \
	echo "== submitting sample requests"; \
	d submit --request-id DEMO-$$stamp-export --email alice@example.com --action export >/dev/null; \
	d submit --request-id DEMO-$$stamp-phone --phone "+44 20 7946 0000" --action export >/dev/null; \
	d submit --request-id DEMO-$$stamp-dryrun --email bob@example.org --action delete --dry-run >/dev/null; \
	sleep 1; d submit --request-id DEMO-$$stamp-delete --email alice@example.com --action delete >/dev/null; \
	echo "== dsar run"; \
	d run --settle 0.2 --connectors "$$C" --log-format text 2>"$(SPOOL)/demo/run.log" || { cat "$(SPOOL)/demo/run.log"; exit 1; }; \
	echo "== dsar status"; \
	d status; \
	job=$$(d status --json | python3 -c 'import json,sys; print([j for j in json.load(sys.stdin) if j["request_id"]=="DEMO-'$$stamp'-export"][0]["job_id"])'); \
	E="$(SPOOL)/outbox/$$job"; \
	echo; echo "== the bundle: $$E"; ls -l "$$E"; \
	echo; echo "== open it with age (as the privacy team):"; \
	echo "   age -d -i $$TEAM/age.key $$E/bundle.zip.age > /tmp/dsar-demo-bundle.zip && unzip -l /tmp/dsar-demo-bundle.zip"; \
	age -d -i "$$TEAM/age.key" "$$E/bundle.zip.age" > /tmp/dsar-demo-bundle.zip && unzip -l /tmp/dsar-demo-bundle.zip; \
	echo; echo "== verify the manifest signature with OpenSSH:"; \
	echo "   ssh-keygen -Y verify -f $(SPOOL)/keys/allowed_signers -I dsar -n dsar-manifest -s $$E/manifest.json.sig < $$E/manifest.json"; \
	ssh-keygen -Y verify -f "$(SPOOL)/keys/allowed_signers" -I dsar -n dsar-manifest -s "$$E/manifest.json.sig" < "$$E/manifest.json"; \
	echo; echo "== or all at once with dsar:"; \
	d verify -i "$$TEAM/age.key" "$$E"; \
	del=$$(d status --json | python3 -c 'import json,sys; print([j for j in json.load(sys.stdin) if j["request_id"]=="DEMO-'$$stamp'-delete"][0]["job_id"])'); \
	R="$(SPOOL)/outbox/$$del"; \
	echo; echo "== the erasure receipt: $$R/manifest.json (signed like the manifest)"; \
	python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["erasure"]; print("   deleted %d, redacted %d, retained %d (legal hold), remaining %d" % (e["deleted"], e["redacted"], e["retained"], e["remaining"])); [print("   %-10s %-28s deleted %d redacted %d retained %d remaining %d" % (s["connector"], s["strategy"] + (" (" + s["table"] + ")" if s.get("table") else ""), s["deleted"], s["redacted"], s["retained"], s["remaining"])) for s in e["sources"]]' "$$R/manifest.json"; \
	ssh-keygen -Y verify -f "$(SPOOL)/keys/allowed_signers" -I dsar -n dsar-manifest -s "$$R/manifest.json.sig" < "$$R/manifest.json"; \
	echo "   alice@example.com left in the sample sources (near misses like malice@ do not count): $$(grep -riwlF 'alice@example.com' "$$C/sample-data" | wc -l) files"; \
	echo; echo "== the audit journal (hash chain, signed checkpoints, this manifest's head in the chain):"; \
	d audit verify --manifest "$$E/manifest.json"; \
	echo; echo "== the data subject's copy (dsar deliver): the same ZIP, encrypted to a passphrase shown only once"; \
	d deliver "$$job" --identity "$$TEAM/age.key"; \
	echo; echo "== the subject opens it with age, typing the passphrase printed above:"; \
	echo "   age -d -o subject.zip $$E/subject.zip.age"; \
	rm -f /tmp/dsar-demo-bundle.zip

# The sample report as a picture (connectors/sample-data/report.png, shown in the README): make demo's
# export of alice@example.com (demo data only), opened with the demo team key, rendered by headless Chromium.
screenshot: demo
	@set -e; \
	command -v chromium >/dev/null || { echo "make screenshot needs Chromium: apt-get install chromium"; exit 1; }; \
	job=$$("$(BIN)" status --json --spool "$(SPOOL)" | python3 -c 'import json,sys; print(sorted([j for j in json.load(sys.stdin) if j.get("request_id","").endswith("-export") and j["request_id"].startswith("DEMO-")], key=lambda j: j["request_id"])[-1]["job_id"])'); \
	out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; \
	age -d -i "$(SPOOL)/demo-team-keys/age.key" "$(SPOOL)/outbox/$$job/bundle.zip.age" > "$$out/bundle.zip"; \
	mkdir "$$out/x" "$$out/profile"; bsdtar -xf "$$out/bundle.zip" -C "$$out/x"; \
	HOME="$$out/profile" chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$$out/profile" \
	  --screenshot=$(CURDIR)/connectors/sample-data/report.png --window-size=1100,1800 "file://$$out/x/index.html" 2>/dev/null; \
	echo "== connectors/sample-data/report.png (job $$job)"

# Benchmark (see bench/README.md): corpus of BENCH_MB MiB, median of BENCH_RUNS runs, table in bench/RESULTS.md.
# PROFILE=1 also profiles the 1- and 1000-subject cases on a 20 MiB corpus (callgrind instruction counts and perf);
# a dsar run is killed after BENCH_TIMEOUT s.
BENCH_MB      ?= 200
BENCH_RUNS    ?= 3
BENCH_TIMEOUT ?= 900
PROFILE       ?=
# Rows of the generated Parquet table of the Spark case (bench/spark_bench.py).
SPARK_ROWS    ?= 20000000
APT_BENCH     := ripgrep time libarchive-tools age wrk $(if $(filter-out 0,$(PROFILE)),valgrind linux-perf gcc)

bench: deps pydeps
	@missing=""; for p in $(APT_BENCH); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing — run: sudo apt-get install$$missing"; exit 1; fi; \
	fi
	$(SWIFT) build -c release --scratch-path .build-release
	python3 bench/bench.py --mb $(BENCH_MB) --runs $(BENCH_RUNS) --timeout $(BENCH_TIMEOUT) \
	  --bin $(CURDIR)/.build-release/release/dsar $(if $(filter-out 0,$(PROFILE)),--profile) \
	  $(if $(wildcard /usr/lib/postgresql/*/bin/initdb),--live-pg) --serve
	@if /usr/bin/python3 -c "import pyspark" 2>/dev/null && command -v java >/dev/null; then \
	  /usr/bin/python3 bench/spark_bench.py --rows $(SPARK_ROWS) --runs $(BENCH_RUNS) \
	    --bin $(CURDIR)/.build-release/release/dsar --results bench/RESULTS.md; \
	else echo "bench: pyspark or java is missing (make pydeps): the Spark section is not measured"; fi

# Red-team harness (bench/redteam.py): hostile and broken inputs against the debug binary, one table of
# area | tried | correct | incorrect and every incorrect case; exits 0 only when all are correct.
# REDTEAM_ARGS passes options, e.g. REDTEAM_ARGS="--only journal,kill9 --quick --keep".
REDTEAM_ARGS ?=

redteam: deps
	$(SWIFT) build --product dsar
	python3 bench/redteam.py --bin .build/debug/dsar $(REDTEAM_ARGS)

# Style check with swift-format (rules in .swift-format); not part of `make test` yet.
# swift-format ships with the toolchain; .swift-format holds the rules (120 columns). Fix with
# `swift format --in-place --recursive Sources Tests Package.swift`.
lint:
	$(SWIFT) format lint --strict --recursive --parallel Sources Tests Package.swift

clean:
	rm -rf .build
