#!/usr/bin/env bash
# Reruns every benchmark whose figures are in BENCHMARKS.md and prints them.
# Performance is measured here, never asserted in tests. Run on a quiet
# machine: client and server share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/zeo-venv.sh >/dev/null
echo "== zrpc";            go test -run '^$' -bench . -benchmem -count 3 ./zrpc/
echo "== tracker";         go test -run '^$' -bench . -benchtime 2s -count 5 -benchmem ./tracker/
echo "== classic endpoint"; go test -run '^$' -bench BeginCommitPairs -benchtime 2s -count 5 -benchmem ./tracker/classic/
echo "== zeoproxy (Go load generator against a Go ZEO sink, direct vs proxy)"
go test -run '^$' -bench . -benchtime 2s -count 3 -benchmem ./zeoproxy/
echo "== zeoproxy report (latency, idle memory, real ZODB workload direct vs proxy)"
IDLE_CONNS=${IDLE_CONNS:-4500} go test -tags report -run 'TestReport' -v -count 1 ./zeoproxy/ | grep -E '^(sync|idle|real|ok|FAIL)'
echo "== zeoproxy TLS report (direct, plaintext proxy, direct TLS, TLS proxy: latency, CPU, setup)"
go test -tags report -run 'TestTLSReport' -v -count 1 ./zeoproxy/ | grep -E '^(sync|real|latency|proxy CPU|connection|ok|FAIL)'
echo "== fleet: a sidecar against the all-in-one proxy, real ZEO, separate processes"
go test -tags report -run TestFleetReport -v -count 1 ./cmd/tidstorage/ | grep -E '^(publication|round trip|added|direct|all-in-one|sidecar|ok|FAIL)'
go test -run '^$' -bench . -benchtime 400000x -count 3 ./fleet/
echo "== backup and restore (scripts/bench-backup.sh; SIZE_MB=1024)"; bash scripts/bench-backup.sh
echo "== archive: ship and restore a 1 GiB base against a local versitygw, lag and requests (SIZE_MB=1024)"
SIZE_MB=${SIZE_MB:-1024} go test -tags report -run TestArchiveReport -v -count 1 -timeout 30m ./archive/ | grep -E '^(ship|restore|lag|ok|FAIL)'
echo "== archive: serve's CPU per transaction with and without the archiver, loss window, real ZEO"
go test -tags report -run TestArchiveRelayReport -v -count 1 ./integration/ | grep -E '^(archive|with|loss|ok|FAIL)'
