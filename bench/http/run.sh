#!/usr/bin/env bash
# Page-cache hit vs nginx static, side by side (figures: BENCHMARKS.md).
#
#   bench/http/run.sh [BUILD_DIR] [ROUNDS] [SECONDS]      (FLOOR=0 skips the 404 floor runs)
#     BUILD_DIR  a Release build with page_cache_server built (default: build-server-rel)
#     ROUNDS     interleaved rounds, each measuring both servers (default 5)
#     SECONDS    wrk duration per measurement (default 10)
#
# Both servers serve the same 1 KB body over keep-alive HTTP/1.1 on 127.0.0.1, pinned to CPU 0
# (cachekit: one io thread; nginx: one worker, access_log off); wrk -t1 -c50 runs pinned to
# CPU 1. Rounds alternate which server goes first. Server CPU per request is utime+stime from
# /proc/<pid>/stat (nginx: master + worker) before/after each run, divided by the requests wrk
# completed. Prints every run and a table of medians. Every step is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-server-rel}
rounds=${2:-5}
seconds=${3:-10}
server_bin=$build/bench/http/page_cache_server
[ -x "$server_bin" ] || { echo "missing $server_bin: cmake --build $build --target page_cache_server" >&2; exit 1; }
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx" >&2; exit 1; }

scratch=$(mktemp -d /tmp/cachekit-http-bench.XXXXXX)
chmod 755 "$scratch"  # nginx's worker runs as nobody and must read the page
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$scratch/nginx/nginx.pid" ] && kill "$(cat "$scratch/nginx/nginx.pid")" 2>/dev/null || true
  sleep 0.2
  rm -rf "$scratch"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Server CPU time so far, in clock ticks, of a pid and its children (nginx's worker).
cpu_ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    # Fields 14 and 15 (utime, stime) counted after the ")" that ends the command name.
    total=$(( total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}') ))
  done
  echo "$total"
}

wait_ready() {  # port
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$1/page.txt" && return 0
    sleep 0.05
  done
  echo "server on port $1 never answered" >&2; exit 1
}

# ---- start both servers, pinned to CPU 0 ----
others=$(pgrep -a -f 'nginx|varnishd|page_cache_server|wrk' || true)
[ -n "$others" ] && echo "warning: other servers/load generators are running:"$'\n'"$others" >&2

ck_port=$(free_port)
taskset -c 0 "$server_bin" "$ck_port" 1024 >"$scratch/cachekit.log" 2>&1 &
ck_pid=$!
pids+=("$ck_pid")

ng_port=$(free_port)
mkdir -p "$scratch/nginx/html"
head -c 1024 /dev/zero | tr '\0' x >"$scratch/nginx/html/page.txt"
sed -e "s|@PORT@|$ng_port|" -e "s|@ROOT@|$scratch/nginx|" bench/http/nginx.conf.in >"$scratch/nginx/nginx.conf"
taskset -c 0 nginx -p "$scratch/nginx" -c nginx.conf -e stderr
for _ in $(seq 50); do [ -s "$scratch/nginx/nginx.pid" ] && break; sleep 0.05; done
ng_pid=$(cat "$scratch/nginx/nginx.pid")

wait_ready "$ck_port"
wait_ready "$ng_port"
for port in "$ck_port" "$ng_port"; do
  cmp <(curl -sf "http://127.0.0.1:$port/page.txt") "$scratch/nginx/html/page.txt" \
    || { echo "the server on port $port does not serve the 1 KB body" >&2; exit 1; }
done
echo "cachekit hit headers:"; curl -s -D - -o /dev/null "http://127.0.0.1:$ck_port/page.txt" | sed 's/^/  /'
echo "nginx headers:"; curl -s -D - -o /dev/null "http://127.0.0.1:$ng_port/page.txt" | sed 's/^/  /'

# Warm both (page cache filled, connections and code paths hot).
for port in "$ck_port" "$ng_port"; do
  timeout 10 taskset -c 1 wrk -t1 -c50 -d2s "http://127.0.0.1:$port/page.txt" >/dev/null
done

measure() {  # name port pid [path] → appends "name rps us_per_req" to results
  local name=$1 port=$2 pid=$3 path=${4:-/page.txt} before after out requests rps
  before=$(cpu_ticks "$pid")
  out=$(timeout $((seconds + 15)) taskset -c 1 wrk -t1 -c50 -d"${seconds}s" "http://127.0.0.1:$port$path")
  after=$(cpu_ticks "$pid")
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  if [ "$path" = /page.txt ] && echo "$out" | grep -q 'Non-2xx\|Socket errors'; then
    echo "$name: errors during the run:"$'\n'"$out" >&2
  fi
  local us
  us=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
  printf '%-9s run: %10s req/s  %6s server CPU us/req\n' "$name" "$rps" "$us"
  echo "$name $rps $us" >>"$scratch/results"
}

for round in $(seq "$rounds"); do
  echo "-- round $round"
  if (( round % 2 )); then
    measure cachekit "$ck_port" "$ck_pid"
    measure nginx "$ng_port" "$ng_pid"
  else
    measure nginx "$ng_port" "$ng_pid"
    measure cachekit "$ck_port" "$ck_pid"
  fi
  # The server's own floor: a 404 the router answers on the io thread (no page cache, 9-byte
  # body). The gap to the hit row is the page-cache lookup.
  [ "${FLOOR:-1}" = 1 ] && measure floor "$ck_port" "$ck_pid" /missing
done

# Proof from the server itself that the hits never used the handler pool.
echo "cachekit /metrics (pool vs io thread):"
curl -s "http://127.0.0.1:$ck_port/metrics" \
  | grep -E '^cachekit_(handler_pool_dispatched_total|http_answered_on_io_thread_total|page_cache_requests_total)' \
  | sed 's/^/  /'

python3 - "$scratch/results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
def col(name, i): return [float(r[i]) for r in rows if r[0] == name]
def q(values):
    values = sorted(values); n = len(values)
    return statistics.median(values), values[max(0, n // 4)], values[min(n - 1, (3 * n) // 4)]
ck_rps, ng_rps = col("cachekit", 1), col("nginx", 1)
ck_us, ng_us = col("cachekit", 2), col("nginx", 2)
print()
print("| server | req/s median (IQR) | server CPU us/req median | runs |")
print("|---|---|---|---|")
table = [("cachekit page-cache hit", ck_rps, ck_us), ("nginx static file", ng_rps, ng_us)]
if col("floor", 1):
    table.append(("cachekit 404 on the io thread (floor)", col("floor", 1), col("floor", 2)))
for name, rps, us in table:
    m, lo, hi = q(rps)
    print(f"| {name} | {m:,.0f} ({lo:,.0f}-{hi:,.0f}) | {statistics.median(us):.2f} | {len(rps)} |")
ratio = statistics.median(ck_rps) / statistics.median(ng_rps)
per_round = [c / n for c, n in zip(ck_rps, ng_rps)]
print(f"\nthroughput ratio cachekit/nginx (medians): {ratio:.2f}  (per round: "
      + ", ".join(f"{r:.2f}" for r in per_round) + ")")
print(f"CPU per request ratio cachekit/nginx (medians): {statistics.median(ck_us) / statistics.median(ng_us):.2f}")
EOF
