# runprov — see README.md. `make demo` and `make test` install what they need
# on a fresh Debian machine when run as root; otherwise they print the command.

GO        ?= go
BIN       := bin/runprov
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# Debian packages the tests and the demo use: the runc sandbox, busybox for
# test images, git for remote tests, Charliecloud for the ch-run runtime,
# Slurm and munge for the Slurm executor's single-node test cluster.
TEST_PKGS := runc busybox-static git charliecloud-runtime ca-certificates slurm-wlm munge uidmap openssh-server openssl python3-securesystemslib python3-cryptography chromium
BENCH_PKGS := podman umoci hyperfine procps

.PHONY: all build test demo bench fuzz lint clean deps deps-bench slurm-up slurm-down man

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/runprov

# deps installs the Debian packages the tests need (as root), or says how.
deps:
	@./testdata/scripts/install-deps.sh $(TEST_PKGS)

deps-bench:
	@./testdata/scripts/install-deps.sh $(TEST_PKGS) $(BENCH_PKGS)

# slurm-up starts a single-node Slurm cluster on this machine (root; see
# testdata/slurm/); idempotent. slurm-down stops its daemons.
slurm-up:
	@./testdata/slurm/slurm-up.sh

slurm-down:
	@./testdata/slurm/slurm-down.sh

# The race detector is on; tests that need root or a binary fail (not skip)
# when CI=true. The Slurm tests need the test cluster: slurm-up failing
# does not stop the other tests, the Slurm tests then fail in CI.
test: deps
	@./testdata/slurm/slurm-up.sh || echo "make test: no Slurm cluster; the Slurm executor tests will skip (fail with CI=true)" >&2
	$(GO) vet ./...
	$(GO) test -race -timeout 75m -count=1 ./...

demo: deps build
	@./examples/demo.sh $(BIN)

bench: deps-bench build
	$(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 60m ./...
	$(GO) run ./cmd/runprov-bench -runprov $(BIN)

# man writes the CLI reference from the command tree: docs/cli (Markdown) and
# docs/man (man pages). The test that fails when they are stale writes them
# (the writers stay out of the runprov binary).
man:
	rm -rf docs/cli docs/man
	RUNPROV_WRITE_DOCS=$(CURDIR)/docs $(GO) test -count=1 -run '^TestCLIReferenceUpToDate$$' ./cmd/runprov

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./runfile
	$(GO) test -run '^$$' -fuzz FuzzPrecheck -fuzztime 60s ./plugins/release
	$(GO) test -run '^$$' -fuzz FuzzPlainJSON -fuzztime 30s ./drivers/sqlite

STATICCHECK_VERSION ?= v0.8.2

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

clean:
	rm -rf bin
