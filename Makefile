# The targets a developer and CI use. `make test` is the default test run
# (race detector on, about ten minutes at most on 2 cores); long soaks and
# fuzzing live behind their own targets.

GO        ?= go
PKGS      := ./...
FUZZTIME  ?= 30s
SOAKSEEDS ?= 100000
SOAKRUNS  ?= 500
SOAKTCPRUNS ?= 50
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all test browser-test lint deps-check bench bench-peers benchmarks fuzz soak demo ci

all: lint test

## test: every package under the race detector, then without it the
## seeded raft schedules and the linearizability histories at full count
## (the race build runs fewer seeds) and the big-command load tests on the
## default config.
test:
	$(GO) test -race -count=1 $(PKGS)
	$(GO) test -count=1 -run 'TestRandomSchedules' ./raft/rafttest
	$(GO) test -count=1 -run 'TestLoad' ./raft/node
	$(GO) test -count=1 -run 'Linearizable' ./linearizability

## browser-test: the status page in headless chromium (installed from
## Debian's packages if missing); screenshots go to BIFROST_SCREENSHOTS,
## or a directory the test log names.
browser-test:
	scripts/install-chromium
	BIFROST_BROWSER=1 $(GO) test -count=1 -run Browser -v .

## lint: formatting, vet and staticcheck (fetched by go run, nothing to install).
lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## deps-check: non-test code of the main module imports the standard library only.
deps-check:
	@bad="$$($(GO) list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' $(PKGS) | grep -v '^github.com/bifrost-go/bifrost' || true)"; \
	if [ -n "$$bad" ]; then echo "non-standard imports in non-test code:"; echo "$$bad"; exit 1; fi; \
	echo "deps-check: standard library only"

## bench: the benchmarks of the main module (ours against net/rpc and friends).
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## bench-peers: the comparisons with hashicorp/raft and others, and with
## etcd (separate modules).
bench-peers:
	cd bench/peers && $(GO) test -run '^$$' -bench . -benchmem -benchtime 3s
	cd bench/peers/etcd && $(GO) test -run '^$$' -bench . -benchmem -benchtime 3s

## benchmarks: every benchmark of bench/, chash/, bench/peers/ and
## bench/peers/etcd/ at a benchtime that keeps the whole run under about
## 25 minutes on 2 cores, raw output in BENCHDIR, then BENCHMARKS.md from
## it. A set that fails (or does not build) is reported as not measured.
BENCHDIR ?= .bench
BENCH    := -run XXX -benchmem -timeout 30m
benchmarks:
	@mkdir -p $(BENCHDIR) && rm -f $(BENCHDIR)/*.txt
	@cat /proc/loadavg > $(BENCHDIR)/loadavg-start 2>/dev/null || true
	@date -u +%Y-%m-%dT%H:%M:%SZ > $(BENCHDIR)/started
	@$(call bench-run,1-bench,.,$(BENCH) -bench '^Benchmark(Call|SMCommand|SMEvents|SMStalledSubscriber|Reads)$$' -benchtime 1s -count 2 ./bench)
	@$(call bench-run,2-bench-memory,.,$(BENCH) -bench '^BenchmarkSMSubscriptionMemory$$' -benchtime 1x ./bench)
	@$(call bench-run,3-bench-snapshot,.,$(BENCH) -bench '^BenchmarkSnapshotInstall$$' -benchtime 5x ./bench)
	@$(call bench-run,4-chash,.,$(BENCH) -bench '^BenchmarkLookup$$' -benchtime 1s ./chash)
	@$(call bench-run,5-peers,bench/peers,$(BENCH) -bench . -benchtime 1s -count 2 .)
	@$(call bench-run,6-etcd,bench/peers/etcd,$(BENCH) -bench '^Benchmark(Events|VsEtcd)$$' -benchtime 1s -count 2 .)
	@$(call bench-run,7-etcd-memory,bench/peers/etcd,$(BENCH) -bench '^BenchmarkVsEtcdMemory$$' -benchtime 50000x .)
	$(GO) run ./internal/benchreport -o BENCHMARKS.md -started "$$(cat $(BENCHDIR)/started)" \
		-loadavg-start $(BENCHDIR)/loadavg-start $(BENCHDIR)/*.txt

# bench-run writes "cmd: <the command>" and then the command's output to
# BENCHDIR/$(1).txt, where benchreport finds both. The exit status is
# tee's, so one failing set does not stop the others.
bench-run = printf 'cmd: %s\n' "$(if $(filter .,$(2)),,cd $(2) && )go test $(3)" > $(BENCHDIR)/$(1).txt; \
	(cd $(2) && $(GO) test $(3)) 2>&1 | tee -a $(BENCHDIR)/$(1).txt

## fuzz: every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

## soak: many more seeded raft fault schedules and linearizability
## histories (in process and on real TCP) than the default run.
soak:
	$(GO) test -count=1 -timeout 0 -run 'TestRandomSchedules' ./raft/rafttest -seeds $(SOAKSEEDS)
	$(GO) test -count=1 -timeout 0 -run 'Linearizable' ./linearizability -runs $(SOAKRUNS) -tcpruns $(SOAKTCPRUNS)

## demo: a small cluster on loopback doing what the library does.
demo:
	$(GO) run ./cmd/bifrost demo

ci: test lint deps-check
