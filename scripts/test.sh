#!/usr/bin/env bash
# The test command of the README (`make test`): creates the ZEO venv if needed,
# then runs every Go test. The race detector is on for everything that has
# goroutines; the tracker's pure state machine runs without it so that its
# simulation covers its full 10^6+ steps quickly (tracker/classic and the
# tracker's Service wrapper are still raced in the second run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/zeo-venv.sh >/dev/null
pkgs_race=$(go list ./... | grep -v -x 'github.com/tidstorage/tidstorage/tracker' || true)
echo "== go test -race (all but the tracker state machine)"
go test -count=1 -race -timeout 25m $pkgs_race
if go list ./tracker >/dev/null 2>&1; then
  echo "== go test ./tracker (simulation, no race detector)"
  go test -count=1 -timeout 10m ./tracker
  echo "== go test ./tracker: a longer simulation (6 M inputs, seeds 1-8, deterministic; the ground truth, bypassing clients and crash replays cost more per input than the 12 M inputs it used to run)"
  simlog=$(mktemp)
  if ! go test -count=1 -timeout 10m ./tracker -run 'TestSimulation$' -sim.steps=6000000 -sim.seeds=8 -v >"$simlog" 2>&1; then
    tail -n 60 "$simlog"; rm -f "$simlog"; exit 1
  fi
  grep -E '^(--- |ok)' "$simlog"; rm -f "$simlog"
  echo "== go test -race -short ./tracker (Service wrapper, short simulation)"
  go test -count=1 -race -short -timeout 10m ./tracker
fi
echo "== monitoring/ (a module of its own: the mixin's rules, dashboard and rule unit tests, against live daemons)"
(cd monitoring && go vet ./... && go test -count=1 -timeout 15m ./...)
