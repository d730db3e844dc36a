# Two commands do everything on a fresh machine: `make demo` and `make test`.
GO ?= go

.PHONY: all build test demo demo-fleet bench venv clean distclean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/tidstorage ./cmd/tidstorage

venv:
	bash scripts/zeo-venv.sh

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

# A tracker and two sidecars (docs/deploy.md), a consistent backup while writers run through both.
demo-fleet:
	bash scripts/demo-fleet.sh

bench:
	bash scripts/bench.sh

# clean keeps the Python environment (.venv-zeo, slow to rebuild); distclean
# removes it too. A venv placed elsewhere by TIDSTORAGE_VENV is never removed.
clean:
	rm -rf bin demo-run demo-fleet-run

distclean: clean
	rm -rf .venv-zeo
