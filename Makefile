# tailscope — make targets. `make run` starts the demo; `make test` runs the tests.
SHELL := /bin/bash
GO ?= go
# Integration tests use these services when they are reachable and skip when
# they are not; CI sets TAILSCOPE_REQUIRE_SERVICES=1 so they fail instead.
TAILSCOPE_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
TAILSCOPE_TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
export TAILSCOPE_TEST_POSTGRES_URL TAILSCOPE_TEST_REDIS_URL

BIN := bin
PKGS := ./...
FUZZTIME ?= 10s
BENCH ?= .
BENCHTIME ?= 1s
BENCHCOUNT ?= 1
BENCHPKGS ?= ./...

.PHONY: scaleout all build run test test-short generate check-generated lint fmt vet fuzz fuzz-short bench bench-smoke screenshots clean help

all: build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build the tailscope and feedsvc binaries into bin/
	$(GO) build -o $(BIN)/tailscope ./cmd/tailscope
	$(GO) build -o $(BIN)/feedsvc ./cmd/feedsvc

run: build ## start the demo (tailscope + feedsvc + load) on the embedded store and print the URL
	$(BIN)/tailscope demo $(ARGS)

# The feedsvc ground-truth scenarios (acceptance/) measure latency: they run
# after the other packages, alone, so a parallel test's CPU is not the tail
# they find. The web package's browser tests play feedsvc traffic and check
# the injected cause on the pages, so they too run alone, before them.
UNIT_PKGS = $(shell $(GO) list $(PKGS) | grep -v -e '/acceptance$$' -e '/web$$')

test: ## run every test with the race detector (web's browser walk, then the acceptance scenarios, last and alone)
	$(GO) test -race -count=1 -timeout 30m $(UNIT_PKGS)
	$(GO) test -race -count=1 -timeout 30m ./web
	@if $(GO) list $(PKGS) | grep -q '/acceptance$$'; then \
	  echo "$(GO) test -race -count=1 -timeout 30m ./acceptance"; \
	  $(GO) test -race -count=1 -timeout 30m ./acceptance; \
	fi

test-short: ## fast unit tests only
	$(GO) test -short -count=1 $(PKGS)

generate: ## regenerate templ components
	$(GO) tool templ generate

check-generated: generate ## fail when generated code is stale
	@git diff --exit-code -- '*_templ.go' || (echo "generated templ code is stale: run 'make generate' and commit" && exit 1)
	@test -z "$$(git status --porcelain -- '*_templ.go')" || (echo "untracked generated files: commit them" && git status --porcelain -- '*_templ.go' && exit 1)

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go' | grep -v '_templ.go$$')
	$(GO) tool templ fmt .

lint: vet ## gofmt check and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '_templ.go$$')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

scaleout: ## a PostgreSQL primary + streaming replica, Redis and two tailscope processes; kill one (docs/SCALING.md)
	TAILSCOPE_REQUIRE_SERVICES=1 $(GO) test -count=1 -run 'TestScaleOut$$' -v ./e2e

fuzz-short: ## run each fuzz target briefly (FUZZTIME, default 10s)
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for t in $$(grep -h '^func Fuzz' $$dir/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    for attempt in 1 2 3; do \
	      echo "== fuzz $$dir $$t ($(FUZZTIME), attempt $$attempt)"; \
	      out=$$(mktemp); rc=0; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$dir >$$out 2>&1 || rc=$$?; cat $$out; \
	      if [ $$rc -eq 0 ]; then rm -f $$out; break; fi; \
	      if [ $$attempt -lt 3 ] && grep -q 'context deadline exceeded' $$out && ! grep -q 'Failing input written' $$out; then \
	        echo "== fuzz $$t: Go 1.26's fuzz coordinator raced its own deadline (go.dev/issue/75804, fixed in 1.27), no input failed; again"; \
	        rm -f $$out; \
	      else rm -f $$out; exit $$rc; fi; \
	    done; \
	  done; \
	done

fuzz: ## run each fuzz target for 5 minutes
	$(MAKE) fuzz-short FUZZTIME=5m

bench: ## run the benchmarks into bench/latest.txt (compare runs with benchstat)
	@mkdir -p bench
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 60m $(BENCHPKGS) | tee bench/latest.txt

bench-smoke: ## run every benchmark once, to catch one that no longer runs (~5 min; not in CI for time)
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m $(PKGS)

screenshots: ## refresh docs/screenshots/ from a real browser
	@command -v chromium >/dev/null || { echo "make screenshots needs Chromium: apt-get install chromium"; exit 1; }
	TAILSCOPE_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'TestBrowser' -timeout 15m ./web/...

clean:
	rm -rf $(BIN) data
