# Shared by load/perf.sh and load/wrk.sh (sourced, not run).

# A TCP port nothing on 127.0.0.1 answers on.
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "$(basename "$0"): no free port" >&2; exit 1
}
