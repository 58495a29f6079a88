#!/usr/bin/env bash
# Side-by-side: cachekit's Redis backend (bench/redis_bench, through the Cache façade) against
# redis-benchmark and redis-cli on one throwaway redis-server, interleaved, with the server
# pinned to CPU 0 and every client pinned to CPU 1. Prints each run and the medians.
#
#   bench/redis_compare.sh BUILD_DIR [ROUNDS=3] [SECONDS=10] [SIZE=100]
set -euo pipefail
build=${1:?build directory with bench/redis_bench}
rounds=${2:-3} seconds=${3:-10} size=${4:-100}
bench="$build/bench/redis_bench"
dir=$(mktemp -d /tmp/cachekit-redis-compare.XXXXXX)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
trap 'kill "$(cat "$dir/redis.pid")" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
url="redis://127.0.0.1:$port/0"
client() { taskset -c 1 "$@"; }
# redis-benchmark runs about as long as redis_bench: requests = seconds x a rough rate.
peer() {  # extra args...; prints "GET rps" / "SET rps"
  client redis-benchmark -p "$port" -d "$size" -r 10000 -t get,set --csv "$@" 2>/dev/null |
    awk -F'","' 'NR>1 {gsub(/"/,"",$1); gsub(/"/,"",$2); print $1, $2}'
}
ours() { client "$bench" --url "$url" --seconds "$seconds" --size "$size" "$@"; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

results="$dir/results"
for round in $(seq 1 "$rounds"); do
  echo "== round $round"
  peer -c 50 -n $((seconds * 25000)) | while read -r t rps; do echo "peer_c50_$t $rps"; done | tee -a "$results"
  # "never": SET without PX, the very command redis-benchmark sends; then with PX (300 s).
  for mode in get set; do
    echo "ours_c50_$mode $(ours --mode "$mode" --threads 50 --timeout never | field calls_per_s)" |
      tee -a "$results"
  done
  echo "ours_c50_set_px $(ours --mode set --threads 50 | field calls_per_s)" | tee -a "$results"
  peer -c 50 -P 16 -n $((seconds * 150000)) | while read -r t rps; do echo "peer_p16_$t $rps"; done | tee -a "$results"
  for mode in get_many set_many; do
    echo "ours_batch100_$mode $(ours --mode "$mode" --threads 50 --batch 100 --timeout never |
      field keys_per_s)" | tee -a "$results"
  done
  # redis-cli --latency samples every 10 ms for -i seconds; "min max avg samples", in ms.
  avg_ms=$(client redis-cli -p "$port" --latency -i "$seconds" | awk '{print $3}')
  echo "peer_latency_avg_us $(awk -v ms="$avg_ms" 'BEGIN {print ms * 1000}')" | tee -a "$results"
  line=$(ours --mode latency --interval-ms 10)
  echo "ours_latency_avg_us $(echo "$line" | field avg_us)" | tee -a "$results"
  echo "ours_latency_p50_us $(echo "$line" | field p50_us)" | tee -a "$results"
  # Back to back, one client: redis-benchmark -c 1 reports a GET p50 to compare p50 with p50.
  p50_ms=$(client redis-benchmark -p "$port" -d "$size" -r 10000 -t get -c 1 \
    -n $((seconds * 5000)) --csv 2>/dev/null | awk -F'","' 'NR>1 {print $5}')
  echo "peer_c1_get_p50_us $(awk -v ms="$p50_ms" 'BEGIN {print ms * 1000}')" | tee -a "$results"
  line=$(ours --mode latency --interval-ms 0)
  echo "ours_c1_get_p50_us $(echo "$line" | field p50_us)" | tee -a "$results"
done

echo "== medians of $rounds rounds (size $size B, ${seconds}s runs)"
/usr/bin/python3 - "$results" <<'PY'
import statistics, sys, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, value = line.split()
    runs[name].append(float(value))
m = {k: statistics.median(v) for k, v in runs.items()}
for k in sorted(m): print(f"{k:28s} {m[k]:12.1f}   runs: {' '.join(f'{x:.0f}' for x in runs[k])}")
def ratio(a, b):  # ratio of the medians, and the median of the per-round ratios
    if a not in m or b not in m or not m[b]: return "n/a"
    paired = statistics.median(x / y for x, y in zip(runs[a], runs[b]) if y)
    return f"{m[a] / m[b]:.2f} (per round {paired:.2f})"
print(f"get c50: {ratio('ours_c50_get', 'peer_c50_GET')}x  set c50: {ratio('ours_c50_set', 'peer_c50_SET')}x"
      f"  set with PX c50: {ratio('ours_c50_set_px', 'peer_c50_SET')}x")
print(f"get_many vs -P16 GET: {ratio('ours_batch100_get_many', 'peer_p16_GET')}x  "
      f"set_many vs -P16 SET: {ratio('ours_batch100_set_many', 'peer_p16_SET')}x")
print(f"latency every 10 ms: ours p50 / redis-cli avg = "
      f"{ratio('ours_latency_p50_us', 'peer_latency_avg_us')}  "
      f"ours avg / redis-cli avg = {ratio('ours_latency_avg_us', 'peer_latency_avg_us')}")
print(f"latency back to back: ours p50 / redis-benchmark -c 1 p50 = "
      f"{ratio('ours_c1_get_p50_us', 'peer_c1_get_p50_us')}")
PY
