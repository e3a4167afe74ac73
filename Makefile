# docex: see README.md. Every target works on a fresh machine with Go, and
# says what it is doing.
GO       ?= go
BIN      := bin/docex
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
PKGS     := ./...

.PHONY: all build demo demo-postgres test test-scale test-readme test-short bench fuzz vet cross builtin corpus corpus-test clean

all: build

# One static binary, no cgo.
build:
	@echo "==> building $(BIN) (the first build compiles every dependency: a minute or two)"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/docex

# End-to-end demo on the embedded SQLite default; its data stays in
# .demo/sqlite (recreated by each run) for you to explore.
demo: build
	scripts/demo.sh $(BIN)

# The same demo against the local PostgreSQL server (database docex_demo,
# recreated by each run; DOCEX_DEMO_PGHOST, default 127.0.0.1).
demo-postgres: build
	scripts/demo.sh $(BIN) postgres

# vet and gofmt, the builds and vet for Windows and macOS (cross, CROSS_TEST),
# then every test with the race detector except the scale tests. The
# PostgreSQL tests use DOCEX_TEST_POSTGRES_DSN, or a throw-away server when
# the PostgreSQL server binaries are installed (scripts/test.sh).
CROSS_TEST ?= windows/amd64 darwin/arm64
test: vet
	@$(MAKE) --no-print-directory cross CROSS="$(CROSS_TEST)"
	scripts/test.sh

# The scale tests (//go:build scale, named TestScale*): 1,000 tenants and
# the like. .ci/run runs them after make test.
test-scale:
	scripts/test.sh scale

# The README's Quick start, Plugins and Showcase sections, verbatim, in a
# temporary directory.
test-readme:
	scripts/readme-test.sh

# A quick check while editing: no race detector, long tests shortened.
test-short:
	$(GO) test -short -count=1 $(PKGS)

vet:
	@echo "==> go vet (also the scale tests) and gofmt"
	$(GO) vet $(PKGS)
	$(GO) vet -tags scale $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }

# Every package compiles, cgo-free, for the other systems docex supports,
# and go vet type-checks its tests there too; nothing is linked or
# written. About 3 s a system with a warm build cache; the first run
# compiles every dependency once per system (about 100 s on 2 cores, twice
# that with vet's). make test checks CROSS_TEST's systems only (the ones
# with files of their own).
CROSS ?= windows/amd64 darwin/arm64 linux/arm64 freebsd/amd64
cross:
	@echo "==> cross-compiling every package for $(CROSS)"
	@for t in $(CROSS); do \
		echo "    $$t"; \
		GOOS=$${t%/*} GOARCH=$${t#*/} CGO_ENABLED=0 $(GO) build $(PKGS) || exit 1; \
		GOOS=$${t%/*} GOARCH=$${t#*/} CGO_ENABLED=0 $(GO) vet $(PKGS) || exit 1; \
	done

# Benchmarks; compare figures within one run (the machines are noisy).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=2s $(PKGS)

# Short fuzzing runs of every fuzz target.
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s $$pkg || exit 1; \
		done; \
	done

# The built-in steps' shared module (plugins/builtin/steps.wasm, committed):
# rebuild after changing plugins/builtin; TestModuleReproducible checks it.
builtin:
	plugins/builtin/build.sh

# The extraction-quality corpus from Debian packages (docs/steps.md), and the
# F1, pdftotext, cold-start and large-PDF measurements on it.
CORPUS ?= $(HOME)/.cache/docex-corpus
corpus:
	plugins/builtin/testdata/corpus/fetch.sh $(CORPUS)

corpus-test: corpus
	DOCEX_STEPS_REPORT=1 DOCEX_CORPUS=$(CORPUS) $(GO) test -count=1 -v -run 'TestExtractionQuality|TestVersusPdftotext|TestColdStart|TestLargePDF' ./plugins/builtin

clean:
	rm -rf bin .demo
