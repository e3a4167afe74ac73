# docex: see README.md. Every target works on a fresh machine with Go.
GO       ?= go
BIN      := bin/docex
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
PKGS     := ./...

.PHONY: all build demo demo-postgres test test-short bench fuzz vet lint testplugins builtin corpus corpus-test clean

all: build

# One static binary, no cgo.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/docex

# End-to-end demo on the embedded SQLite default, in a temporary directory.
demo: build
	scripts/demo.sh $(BIN)

# Everything: vet, then all tests with the race detector. The PostgreSQL
# tests need DOCEX_TEST_POSTGRES_DSN (.ci/run sets it); outside CI they skip
# with a message when it is unset.
# The same demo against a throw-away database on the local PostgreSQL.
demo-postgres: build
	scripts/demo.sh $(BIN) postgres

test: vet
	$(GO) test -race -count=1 -timeout 25m $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }

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
# F1 and pdftotext comparisons on it.
CORPUS ?= $(HOME)/.cache/docex-corpus
corpus:
	plugins/builtin/testdata/corpus/fetch.sh $(CORPUS)

corpus-test: corpus
	DOCEX_STEPS_REPORT=1 DOCEX_CORPUS=$(CORPUS) $(GO) test -count=1 -v -run 'TestExtractionQuality|TestVersusPdftotext|TestColdStart|TestLargePDF' ./plugins/builtin

clean:
	rm -rf bin
