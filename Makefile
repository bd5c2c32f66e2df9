# The targets a developer and CI use. `make test` is the default test run
# (race detector on, about ten minutes at most on 2 cores); long soaks and
# fuzzing live behind their own targets.

GO        ?= go
PKGS      := ./...
FUZZTIME  ?= 30s
SOAKSEEDS ?= 100000
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all test lint deps-check bench bench-peers fuzz soak demo ci

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

## fuzz: every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

## soak: many more seeded raft fault schedules than the default run.
soak:
	$(GO) test -count=1 -timeout 0 -run 'TestRandomSchedules' ./raft/rafttest -seeds $(SOAKSEEDS)

## demo: a small cluster on loopback doing what the library does.
demo:
	$(GO) run ./cmd/bifrost demo

ci: test lint deps-check
