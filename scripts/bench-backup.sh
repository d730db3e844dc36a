#!/usr/bin/env bash
# Backup and restore side by side on one Data.fs with a warm page cache:
# md5sum, cp, repozo and tidstorage. Full backup, restore and verify: medians
# of interleaved rounds (scripts/bench-backup.py; ROUNDS, default 5;
# BASE=/path/to/an/older/tidstorage adds its commands to the same rounds);
# then what each restore step costs; then an incremental backup of a few new
# transactions (best of 3).
# SIZE_MB sets the Data.fs size (default 1024); WORK the scratch directory.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${TIDSTORAGE_VENV:-$PWD/.venv-zeo}
SIZE_MB=${SIZE_MB:-1024}
WORK=${WORK:-$(mktemp -d)}
trap 'rm -rf "$WORK"' EXIT
go build -o "$WORK/tidstorage" ./cmd/tidstorage
ROOT=$PWD
py() { "$VENV/bin/python" "$ROOT/integration/python/backup_fs.py" "$@"; }
last() { py read --fs "$WORK/Data.fs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["last"])'; }
py write --fs "$WORK/Data.fs" --count "$SIZE_MB" --big 1000000 >/dev/null
cat > "$WORK/t.hcl" <<HCL
storage "s" {
  data_fs    = "$WORK/Data.fs"
  repository = "$WORK/repo"
}
HCL
best() { # LABEL PRE CMD...: best of 3 runs of CMD, each after PRE
  local label=$1 pre=$2 b=999; shift 2
  for _ in 1 2 3; do
    eval "$pre"
    local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
    b=$(python3 -c "print(min($b, $e-$s))")
  done
  printf '%-34s %7.2f s\n' "$label" "$b"
}
cd "$WORK"
T=$(last)
python3 "$ROOT/scripts/bench-backup.py" --work "$WORK" --tidstorage ./tidstorage --venv "$VENV" --tid "$T" \
  --rounds "${ROUNDS:-5}" ${BASE:+--base "$BASE"}
rm -rf repo
./tidstorage backup -c t.hcl --tid "s=$T" --progress 0 >/dev/null 2>&1
(cd "$ROOT" && RESTORE_REPO="$WORK/repo" go test -tags report -run TestReportRestoreSteps -v -count 1 ./backup/ |
  grep -v -E '^(=== RUN|--- PASS|PASS$|ok )')
best "tidstorage verify --read-data" true ./tidstorage verify -c t.hcl --read-data
# Incremental: a few new transactions on top of a fresh full backup.
rm -rf repo rz; mkdir rz
./tidstorage backup -c t.hcl --tid "s=$T" --progress 0 >/dev/null 2>&1
"$VENV/bin/repozo" -B -F -r rz -f Data.fs >/dev/null 2>&1
py write --fs Data.fs --count 3 >/dev/null
T2=$(last)
keep_last_set() { # drop the incremental of the previous run
  for r in repo rz; do
    ls "$r"/*.deltafs >/dev/null 2>&1 || continue
    n=$(ls "$r"/*.deltafs | tail -1); rm -f "$n" "${n%.deltafs}".tidstorage.json "${n%.deltafs}".index
    d=$(ls "$r"/*.dat); head -n 1 "$d" > "$d.new"; mv "$d.new" "$d"
  done
}
best "repozo -B (incremental)" "keep_last_set; sleep 1" "$VENV/bin/repozo" -B -r rz -f Data.fs
best "tidstorage backup (incremental)" "keep_last_set; sleep 1" ./tidstorage backup -c t.hcl --tid "s=$T2" --progress 0
best "tidstorage backup -Q (incremental)" "keep_last_set; sleep 1" ./tidstorage backup -c t.hcl --tid "s=$T2" --progress 0 -Q
