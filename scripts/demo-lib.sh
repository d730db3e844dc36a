# Shared by scripts/demo.sh and scripts/demo-fleet.sh (sourced, after cd to
# the repository and setting run=<the demo's directory>): the ZEO venv, the
# build, a fresh $run, a cleanup of every process started (pids), and the
# helpers free_port, start_zeo NAME PORT STORAGES..., wait_port PORT,
# wait_jobs and restore_and_check CONFIG MAIN CATALOG SESSIONS.
root=$(pwd)
venv=$(bash scripts/zeo-venv.sh)
echo "== building tidstorage"
make -s build
bin=$root/bin/tidstorage
rm -rf "$run"
mkdir -p "$run"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_zeo() { # name port storages...
  local name=$1 port=$2; shift 2
  {
    echo "<zeo>"; echo "  address 127.0.0.1:$port"; echo "</zeo>"
    for s in "$@"; do
      echo "<filestorage $s>"; echo "  path $run/$name-$s.fs"; echo "  blob-dir $run/$name-$s.blobs"; echo "</filestorage>"
    done
  } > "$run/$name.conf"
  "$venv/bin/runzeo" -C "$run/$name.conf" > "$run/$name.log" 2>&1 &
  pids+=($!)
}

# wait_jobs waits for the background jobs the demo started, not for the
# servers (pids).
wait_jobs() { for j in $(jobs -p); do case " ${pids[*]} " in *" $j "*) ;; *) wait "$j";; esac; done; }

wait_port() {
  for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2; return 1
}

# restore_and_check CONFIG MAIN CATALOG SESSIONS: restores CONFIG's last
# backup set to $run/restored, opens every storage with ZODB (the Data.fs
# paths under it given) and fails unless the paired writers' counters of
# main and sessions are equal: the set is coherent.
restore_and_check() {
  local cfg=$1 main=$2 catalog=$3 sessions=$4 restored
  "$bin" restore -c "$cfg" --to "$run/restored" --progress 0
  restored=$("$venv/bin/python" integration/python/check_restored.py \
    main="$run/restored/$main" catalog="$run/restored/$catalog" sessions="$run/restored/$sessions")
  echo "$restored"
  "$venv/bin/python" - "$restored" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
m, s = r["main"]["counter"], r["sessions"]["counter"]
print("restored paired counters: main=%s sessions=%s -> %s" % (m, s, "coherent" if m == s else "INCOHERENT"))
sys.exit(0 if m == s else 1)
PY
}
