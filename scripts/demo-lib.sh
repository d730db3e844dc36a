# Shared by scripts/demo.sh and scripts/demo-fleet.sh (sourced, after cd to
# the repository and setting run=<the demo's directory>): the ZEO venv, the
# build, a fresh $run, a cleanup of every process started (pids), and the
# helpers free_port, start_zeo NAME PORT STORAGES... and wait_port PORT.
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

wait_port() {
  for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2; return 1
}
