# dsar — make demo: everything on a fresh machine; make test: build and run every test.
SWIFT      ?= swift
SPOOL      ?= $(CURDIR)/spool
CONNECTORS ?= $(CURDIR)/connectors
BIN        := $(CURDIR)/.build/debug/dsar
# Debian packages the build, the demo and the tests use (installed when missing and run as root).
APT_BUILD  := libarchive-dev zlib1g-dev pkg-config
APT_TOOLS  := age libarchive-tools unzip sqlite3 openssh-client time
APT        := $(APT_BUILD) $(APT_TOOLS)

.PHONY: all deps build test demo clean

all: build

deps:
	@missing=""; for p in $(APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing — run: sudo apt-get install$$missing"; exit 1; fi; \
	fi

build: deps
	$(SWIFT) build

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test

# The whole pipeline on the sample data in connectors/: keys, config, requests, run, status.
demo: build
	@set -e; \
	d() { "$(BIN)" "$$@" --spool "$(SPOOL)"; }; \
	d init >/dev/null; \
	echo "== copying the sample connectors and data into $(SPOOL)/demo (the repository copy stays untouched)"; \
	rm -rf "$(SPOOL)/demo"; mkdir -p "$(SPOOL)/demo"; cp -r connectors "$(SPOOL)/demo/"; \
	gzip -f "$(SPOOL)/demo/connectors/sample-data/logs/access.log.1"; \
	C="$(SPOOL)/demo/connectors"; \
	d connectors check --connectors "$$C"; \
	stamp=$$(date -u +%Y%m%dT%H%M%S); \
	echo "== submitting sample requests"; \
	d submit --request-id DEMO-$$stamp-1 --email alice@example.com --action export; \
	d submit --request-id DEMO-$$stamp-2 --user-id 1043 --phone "+44 20 7946 0001" --action export; \
	echo "== dsar run"; \
	d run --settle 0.2 --connectors "$$C" --log-format text || true; \
	echo "== dsar status"; \
	d status; \
	echo; echo "Outbox entries are in $(SPOOL)/outbox/<job-id>/"; \
	ls -1d $(SPOOL)/outbox/*/ | tail -n 2

clean:
	rm -rf .build
