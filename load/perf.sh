#!/usr/bin/env bash
# The published load run: release builds, the keycloak-benchmark data set, every scenario in
# increment mode (the highest rate meeting the SLA: 0 errors, mean ≤ 300 ms, p99 ≤ 500 ms per
# request) on SQLite with one node, PostgreSQL with one node and with two nodes, and panva's
# oidc-provider 9 measured in the same run for client_credentials and discovery.
#
#   load/perf.sh [--users N] [--clients M] [--step-secs S] [--ramp-up S] [--scale F]
#                [--configs "sqlite pg1 pg2"] [--scenarios "auth_code …"] [--no-peer]
#                [--access-token-alg RS256|ES256|EdDSA] [--id-token-alg RS256|ES256|EdDSA]
#                [--pg postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable] [--out DIR]
#
# Tables go to stdout and, with the JSON of each run, to DIR (default load/results/<UTC time>).
# Everything runs on this machine, against 127.0.0.1 only; every phase is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

users=10000
clients=100
step_secs=20
ramp=5
scale=1
configs="sqlite pg1 pg2"
scenarios="auth_code login_user_password client_credentials refresh_token basic_get discovery sso_reassess step_up_totp password_spray"
peer=1
alg=RS256
idalg=RS256
pg="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --users) users=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --step-secs) step_secs=$2; shift 2 ;;
    --ramp-up) ramp=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --scenarios) scenarios=$2; shift 2 ;;
    --no-peer) peer=0; shift ;;
    --pg) pg=$2; shift 2 ;;
    --access-token-alg) alg=$2; shift 2 ;;
    --id-token-alg) idalg=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "perf.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
out=${out:-$root/load/results/$(date -u +%Y%m%dT%H%M%SZ)}
export PGOPTIONS="--client-min-messages=warning"
mkdir -p "$out"

# First rate and increment of each scenario (ops/s), times --scale: each scenario's capacity
# differs by two orders of magnitude (an argon2 hash per sign-in, none per token).
declare -A start=(
  [auth_code]=10 [login_user_password]=10 [client_credentials]=250 [refresh_token]=250
  [basic_get]=500 [discovery]=4000 [sso_reassess]=50 [step_up_totp]=10 [password_spray]=20
)

target_dir=${CARGO_TARGET_DIR:-$root/target}
echo "==> release builds"
cargo build --release --quiet -p vigil --bin vigil -p vigil-load --bin vigil-load
vigil="$target_dir/release/vigil"
load="$target_dir/release/vigil-load"

work=$(mktemp -d)
pids=()
pgdb=""
cleanup() {
  for p in "${pids[@]}"; do
    kill -INT "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  pids=()
}
drop_pg() {
  if [ -n "$pgdb" ]; then
    psql -q "$pg" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1 || true
    pgdb=""
  fi
}
trap 'cleanup; drop_pg; rm -rf "$work"' EXIT

# shellcheck source=load/lib.sh
. "$root/load/lib.sh"

# The URL of database $1 on the server of $pg.
pg_url() {
  local base=${pg%%\?*} query=""
  [[ "$pg" == *\?* ]] && query="?${pg#*\?}"
  echo "${base%/*}/$1$query"
}

wait_healthy() {
  for _ in $(seq 1 300); do
    # /readyz: /healthz is liveness and answers 200 while a node still waits for its database.
    curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "perf.sh: vigil on port $1 did not come up" >&2; exit 1
}

machine() {
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r)"
  echo "vigil: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), $(rustc --version)"
  echo "data set: $users users (argon2id m=19456 KiB, t=2, p=1), $clients clients; access tokens $alg, ID tokens $idalg"
  echo "increments: ${step_secs} s measured after a ${ramp} s ramp per rate; the load generator shares the machine"
}
machine | tee "$out/machine.txt"

summary="$out/summary.txt"
: >"$summary"

run_config() {
  local config=$1 nodes db_url label
  case "$config" in
    sqlite) nodes=1; db_url="sqlite://$work/$config.db"; label="SQLite, 1 node" ;;
    pg1|pg2)
      nodes=${config#pg}
      # One database for both PostgreSQL configurations: seeding again skips what exists.
      if [ -z "$pgdb" ]; then
        pgdb="vigil_perf_$$"
        psql -q "$pg" -c "DROP DATABASE IF EXISTS $pgdb" >/dev/null
        psql -q "$pg" -c "CREATE DATABASE $pgdb" >/dev/null
      fi
      db_url=$(pg_url "$pgdb")
      label="PostgreSQL, $nodes node$([ "$nodes" = 1 ] || echo s)" ;;
    *) echo "perf.sh: unknown config $config (sqlite, pg1, pg2)" >&2; exit 2 ;;
  esac
  echo
  echo "==> $label: seeding $users users and $clients clients"
  local ports=() targets=() pidargs=() i port
  for i in $(seq 1 "$nodes"); do ports+=("$(free_port)"); done
  export VIGIL_DATABASE_URL="$db_url"
  export VIGIL_ISSUER="http://localhost:${ports[0]}"
  export VIGIL_MASTER_KEY_FILE="$work/vigil.key"
  export VIGIL_GEOIP_CITY="$root/geoip/vigil-test-city.mmdb"
  export VIGIL_GEOIP_ASN="$root/geoip/vigil-test-asn.mmdb"
  export VIGIL_TRUSTED_PROXIES="127.0.0.1/32"
  export VIGIL_LOG=warn
  unset VIGIL_CONFIG
  "$vigil" seed --users "$users" --clients "$clients" --totp --access-token-alg "$alg" --id-token-alg "$idalg"
  for port in "${ports[@]}"; do
    VIGIL_BIND="127.0.0.1:$port" "$vigil" serve >"$work/vigil-$config-$port.log" 2>&1 &
    pids+=($!)
    targets+=(--target "http://127.0.0.1:$port")
    pidargs+=(--pid "$!")
  done
  for port in "${ports[@]}"; do wait_healthy "$port"; done
  local s first
  for s in $scenarios; do
    first=$(awk -v a="${start[$s]}" -v f="$scale" 'BEGIN { v = a * f; if (v < 1) v = 1; printf "%g", v }')
    echo "--> $label: $s from $first/s in steps of $first/s"
    "$load" "${targets[@]}" "${pidargs[@]}" --users "$users" --clients "$clients" \
      --rate "$first" --increment "$first" --ramp-up "$ramp" --duration "$step_secs" \
      --label "vigil, $label" --json-out "$out/$config-$s.json" "$s" \
      | tee "$out/$config-$s.txt" | tee -a "$summary" \
      || echo "--> $label: $s did not run to the end (its set-up failed; see above)" | tee -a "$summary"
  done
  cleanup
}

for c in $configs; do run_config "$c"; done

if [ "$peer" = 1 ]; then
  echo
  echo "==> peer: oidc-provider 9 (in-memory adapter, opaque tokens)"
  (cd "$root/load/peer" && npm ci --no-audit --no-fund --silent)
  port=$(free_port)
  (cd "$root/load/peer" && PORT=$port NODE_ENV=production exec node server.mjs >"$work/peer.log" 2>&1) &
  pids+=($!)
  peer_pid=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/.well-known/openid-configuration" >/dev/null 2>&1 && break
    sleep 0.2
  done
  version=$(node -p "require('$root/load/peer/node_modules/oidc-provider/package.json').version")
  for s in client_credentials discovery; do
    first=$(awk -v a="${start[$s]}" -v f="$scale" 'BEGIN { v = a * f; if (v < 1) v = 1; printf "%g", v }')
    echo "--> oidc-provider $version: $s"
    "$load" --target "http://127.0.0.1:$port" --pid "$peer_pid" --users 0 --clients 1 \
      --rate "$first" --increment "$first" --ramp-up "$ramp" --duration "$step_secs" \
      --label "oidc-provider $version (peer), Node $(node --version)" \
      --json-out "$out/peer-$s.json" "$s" \
      | tee "$out/peer-$s.txt" | tee -a "$summary"
  done
  cleanup
fi

echo
echo "==> results in $out (summary.txt: every table; *.json: one object per run)"
