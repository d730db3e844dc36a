# Two commands do everything on a fresh machine: `make demo` and `make test`.
GO ?= go

.PHONY: all build test demo bench venv clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/tidstorage ./cmd/tidstorage

venv:
	bash scripts/zeo-venv.sh

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench:
	bash scripts/bench.sh

clean:
	rm -rf bin demo-run
