#!/usr/bin/env bash
# Side by side with wrk, as issue 14's first table was measured: vigil (release, SQLite, seeded
# clients, one node per access-token algorithm) and panva's oidc-provider 9 (load/peer), each
# endpoint for a few seconds with `wrk -t1 -c16`, vigil and the peer interleaved, twice. Closed
# loop: this measures the server's ceiling at 16 connections, not latency under a set rate
# (vigil-load does that).
#
#   load/wrk.sh [--secs 5] [--rounds 2] [--algs "RS256 ES256 EdDSA"]
#
# Needs wrk (Debian: apt-get install wrk) and Node.js with npm for the peer.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=5
rounds=2
algs="RS256 ES256 EdDSA"
while [ $# -gt 0 ]; do
  case "$1" in
    --secs) secs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --algs) algs=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "wrk.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

target_dir=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --quiet -p vigil --bin vigil
vigil="$target_dir/release/vigil"
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$work"' EXIT

# shellcheck source=load/lib.sh
. "$root/load/lib.sh"
wait_up() {
  for _ in $(seq 1 150); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "wrk.sh: $1 did not answer" >&2; exit 1
}

# A Lua script for wrk: client_credentials with client_secret_basic for client-1.
basic=$(printf '%s' 'client-1:client-1-secret-vigil-load-testing' | base64 -w0)
cat >"$work/cc.lua" <<EOF
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
EOF

declare -A port
for alg in $algs; do
  p=$(free_port)
  export VIGIL_DATABASE_URL="sqlite://$work/$alg.db" VIGIL_ISSUER="http://localhost:$p" \
    VIGIL_MASTER_KEY_FILE="$work/vigil.key" VIGIL_LOG=warn VIGIL_BIND="127.0.0.1:$p"
  unset VIGIL_CONFIG
  "$vigil" seed --users 1 --clients 1 --access-token-alg "$alg" >/dev/null
  "$vigil" serve >"$work/vigil-$alg.log" 2>&1 &
  pids+=($!)
  port[$alg]=$p
  wait_up "http://127.0.0.1:$p/readyz"
done
(cd "$root/load/peer" && npm ci --no-audit --no-fund --silent)
peer_port=$(free_port)
(cd "$root/load/peer" && PORT=$peer_port NODE_ENV=production exec node server.mjs >"$work/peer.log" 2>&1) &
pids+=($!)
wait_up "http://127.0.0.1:$peer_port/.well-known/openid-configuration"
version=$(node -p "require('$root/load/peer/node_modules/oidc-provider/package.json').version")

# One wrk run: prints "requests/s p50 p99" (ms).
run() {
  local url=$1 script=${2:-}
  local out
  if [ -n "$script" ]; then
    out=$(wrk -t1 -c16 -d"${secs}s" --latency -s "$script" "$url")
  else
    out=$(wrk -t1 -c16 -d"${secs}s" --latency "$url")
  fi
  if echo "$out" | grep -q "Non-2xx"; then
    echo "wrk.sh: non-2xx answers from $url" >&2
    echo "$out" >&2
    exit 1
  fi
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  echo "$rps req/s, p50 $p50, p99 $p99"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); vigil $(git rev-parse --short HEAD); oidc-provider $version, Node $(node --version)"
echo "wrk -t1 -c16, ${secs} s per run, $rounds rounds interleaved"
first=${algs%% *}
for r in $(seq 1 "$rounds"); do
  echo "round $r"
  echo "  discovery         vigil:         $(run "http://127.0.0.1:${port[$first]}/.well-known/openid-configuration")"
  echo "  discovery         oidc-provider: $(run "http://127.0.0.1:$peer_port/.well-known/openid-configuration")"
  for alg in $algs; do
    echo "  client_credentials vigil $alg:$(printf '%*s' $((7 - ${#alg})) '') $(run "http://127.0.0.1:${port[$alg]}/token" "$work/cc.lua")"
  done
  echo "  client_credentials oidc-provider: $(run "http://127.0.0.1:$peer_port/token" "$work/cc.lua")"
done
