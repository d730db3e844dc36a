#!/usr/bin/env bash
# Reruns every benchmark whose figures are in BENCHMARKS.md and prints them;
# the lines marked RATIO (and the goals in brackets) are the ones to compare
# across machines. Performance is measured here, never asserted in tests. Run
# on a quiet machine: clients, servers and tidstorage share its cores (the
# reports print the load average).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/zeo-venv.sh >/dev/null
export TIDSTORAGE_VENV=${TIDSTORAGE_VENV:-$PWD/.venv-zeo}
echo "== relay cost: all-in-one tidstorage serve against a bare io.Copy relay, real ZODB clients and ZEO, interleaved"
go test -timeout 60m -tags report -run TestRelayReport -v -count 1 ./cmd/tidstorage/ | grep -v -E '^(=== RUN|--- PASS|PASS$)'
echo "== fleet: a sidecar against the all-in-one proxy, the tracker's CPU per commit, real ZEO, separate processes"
go test -tags report -run TestFleetReport -v -count 1 ./cmd/tidstorage/ | grep -E '^(publication|round trip|added|direct|all-in-one|sidecar|fleet tracker|ok|FAIL)'
go test -run '^$' -bench . -benchtime 400000x -count 3 ./fleet/
echo "== zeoproxy report: latency, idle memory at 1,000 and 4,000 connections, setup, a burst of 2,000 connections"
go test -timeout 30m -tags report -run 'TestReport' -v -count 1 ./zeoproxy/ | grep -E '^(sync|idle|real|connection setup|burst|ok|FAIL)'
echo "== zeoproxy TLS report (direct, plaintext proxy, direct TLS, TLS proxy: latency, CPU, setup)"
go test -tags report -run 'TestTLSReport' -v -count 1 ./zeoproxy/ | grep -E '^(sync|real|latency|proxy CPU|connection|ok|FAIL)'
echo "== zeoproxy (Go load generator against a Go ZEO sink, direct vs proxy)"
go test -run '^$' -bench . -benchtime 2s -count 3 -benchmem ./zeoproxy/
echo "== zrpc";            go test -run '^$' -bench . -benchmem -count 3 ./zrpc/
echo "== tracker";         go test -run '^$' -bench . -benchtime 2s -count 5 -benchmem ./tracker/
echo "== classic endpoint"; go test -run '^$' -bench BeginCommitPairs -benchtime 2s -count 5 -benchmem ./tracker/classic/
echo "== backup and restore (scripts/bench-backup.sh; SIZE_MB=1024)"; bash scripts/bench-backup.sh
echo "== archive: ship and restore a 1 GiB base against a local versitygw, lag and requests (SIZE_MB=1024)"
SIZE_MB=${SIZE_MB:-1024} go test -tags report -run TestArchiveReport -v -count 1 -timeout 30m ./archive/ | grep -E '^(ship|restore|lag|ok|FAIL)'
echo "== archive: serve's CPU per transaction with and without the archiver, loss window, real ZEO"
go test -tags report -run TestArchiveRelayReport -v -count 1 ./integration/ | grep -E '^(archive|with|loss|ok|FAIL)'
