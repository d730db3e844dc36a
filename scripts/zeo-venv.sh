#!/usr/bin/env bash
# Creates (or refreshes) the Python virtualenv with real ZEO/ZODB used by the
# integration tests and the quickstart. Idempotent: re-running with unchanged
# requirements does nothing. Prints the venv path on success.
#   TIDSTORAGE_VENV  where to create it (default: <repo>/.venv-zeo)
#   PYTHON           interpreter to use (default: python3)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${TIDSTORAGE_VENV:-$here/.venv-zeo}
req=$here/integration/python/requirements.txt
py=${PYTHON:-python3}
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$venv/bin/runzeo" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv"; exit 0
fi
echo "zeo-venv: creating $venv from $req" >&2
"$py" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
"$venv/bin/python" -c 'import ZEO, ZODB, msgpack' >&2
echo "$want" > "$stamp"
echo "$venv"
