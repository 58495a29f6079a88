#!/usr/bin/env bash
# A page-cache hit served from each store, side by side with redis-benchmark's GET on the
# same redis-server (figures: BENCHMARKS.md, "Two tiers").
#
#   bench/http/stores.sh [BUILD_DIR] [ROUNDS] [SECONDS]
#     BUILD_DIR  a Release build with page_cache_server built (default: build-rel)
#
# page_cache_server (one io thread) and redis-server are pinned to CPU 0; wrk -t1 -c50 and
# redis-benchmark -c 50 to CPU 1. Each round runs redis-benchmark GET, then the page server
# on locmem, on Redis (database 2) and tiered (locmem in front of that Redis), each started
# fresh, warmed, and measured with wrk. Server CPU per hit is the page server's utime+stime
# divided by the requests wrk completed.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-rel}
rounds=${2:-3}
seconds=${3:-10}
server_bin=$build/bench/http/page_cache_server
[ -x "$server_bin" ] || { echo "missing $server_bin: cmake --build $build --target page_cache_server" >&2; exit 1; }
scratch=$(mktemp -d /tmp/cachekit-stores-bench.XXXXXX)
server_pid=
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  [ -f "$scratch/redis.pid" ] && kill "$(cat "$scratch/redis.pid")" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

rport=$(free_port)
taskset -c 0 redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$scratch" --daemonize yes --pidfile "$scratch/redis.pid" --logfile "$scratch/redis.log"
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done

start_server() {  # store; sets server_pid and port
  port=$(free_port)
  taskset -c 0 "$server_bin" "$port" 1024 "$1" >"$scratch/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/page.txt" && break; sleep 0.05; done
  timeout 10 taskset -c 1 wrk -t1 -c50 -d2s "http://127.0.0.1:$port/page.txt" >/dev/null
}

measure() {  # name store
  local before after out requests rps us
  start_server "$2"
  before=$(cpu_ticks "$server_pid")
  out=$(timeout $((seconds + 15)) taskset -c 1 wrk -t1 -c50 -d"${seconds}s" "http://127.0.0.1:$port/page.txt")
  after=$(cpu_ticks "$server_pid")
  if echo "$out" | grep -q 'Non-2xx\|Socket errors'; then echo "$1: errors:"$'\n'"$out" >&2; fi
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  us=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
  printf '%-22s %10s req/s  %7s server CPU us/hit\n' "$1" "$rps" "$us"
  echo "$1 $rps $us" >>"$scratch/results"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
}

for round in $(seq "$rounds"); do
  echo "-- round $round"
  rb=$(taskset -c 1 redis-benchmark -p "$rport" -c 50 -t get -d 1024 -n $((seconds * 40000)) --csv 2>/dev/null |
    awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2}')
  printf '%-22s %10s req/s\n' redis-benchmark-get "$rb"
  echo "redis-benchmark $rb 0" >>"$scratch/results"
  measure page-hit-locmem locmem
  measure page-hit-redis "redis://127.0.0.1:$rport/2"
  measure page-hit-tiered "tiered:redis://127.0.0.1:$rport/2"
done

python3 - "$scratch/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = lambda n, i: statistics.median(float(r[i]) for r in rows if r[0] == n)
rb = med("redis-benchmark", 1)
lm = med("page-hit-locmem", 1)
print("\n| measure | req/s (median) | server CPU us/hit | ratio |")
print("|---|---|---|---|")
print(f"| redis-benchmark -c 50 GET (1 KB) | {rb:,.0f} | | |")
print(f"| page hit, locmem | {lm:,.0f} | {med('page-hit-locmem', 2):.2f} | |")
r = med("page-hit-redis", 1)
print(f"| page hit, Redis | {r:,.0f} | {med('page-hit-redis', 2):.2f} | {r / rb:.2f}x redis-benchmark GET |")
t = med("page-hit-tiered", 1)
print(f"| page hit, tiered over Redis | {t:,.0f} | {med('page-hit-tiered', 2):.2f} | {t / lm:.2f}x locmem |")
PY
