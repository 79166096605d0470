#!/usr/bin/env bash
# Creates (or refreshes) the Python venv for tests/scim/check.py and prints its
# interpreter path as the only line on stdout. Idempotent: pip runs only when
# the venv is missing or was built from a different requirements.txt.
#   venv: ${VIGIL_SCIM_VENV:-<repo>/target/scim-venv}    needs: python3 >= 3.11
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${VIGIL_SCIM_VENV:-$repo/target/scim-venv}"
req="$here/requirements.txt"
stamp="$venv/.requirements.sha256"

want="$(python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$req")"

up_to_date() {
  [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]
}

if ! up_to_date; then
  mkdir -p "$(dirname "$venv")"
  # Parallel callers (cargo runs tests concurrently) install only once.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$venv.lock"
    flock 9
  fi
  if ! up_to_date; then
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || { echo "venv.sh: python3 >= 3.11 is required (scim2-client)" >&2; exit 1; }
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
    rm -f "$stamp"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
    echo "$want" >"$stamp"
  fi
fi

echo "$venv/bin/python"
