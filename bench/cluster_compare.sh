#!/usr/bin/env bash
# Side-by-side on one throwaway Redis Cluster (3 primaries, no replicas, pinned to CPU 0):
# cachekit's cluster backend (bench/redis_bench --url redis-cluster://..., through the Cache
# façade, pinned to CPU 1) against redis-benchmark --cluster (whose CSV lines are picked out of
# its list of masters), interleaved. GET/SET at 50 clients, then get_many/set_many of 100 keys
# (keys/s) against redis-benchmark --cluster -P 16.
#
#   bench/cluster_compare.sh BUILD_DIR [ROUNDS=3] [SECONDS=10] [SIZE=100]
set -euo pipefail
build=${1:?build directory with bench/redis_bench}
rounds=${2:-3} seconds=${3:-10} size=${4:-100}
bench="$build/bench/redis_bench"
dir=$(mktemp -d /tmp/cachekit-cluster-compare.XXXXXX)
ports=()
port_pair() {  # a free port whose bus port (+10000) is free too
  /usr/bin/python3 -c '
import random, socket
while True:
    p = random.randint(20000, 55535)
    try:
        for q in (p, p + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass'
}
for _ in 1 2 3; do ports+=("$(port_pair)"); done
cleanup() {
  for p in "${ports[@]}"; do kill "$(cat "$dir/$p/redis.pid")" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
for p in "${ports[@]}"; do
  mkdir -p "$dir/$p"
  taskset -c 0 redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file nodes.conf --save '' --appendonly no --dir "$dir/$p" --daemonize yes \
    --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log"
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-yes >/dev/null
for p in "${ports[@]}"; do
  for _ in $(seq 1 200); do
    redis-cli -p "$p" cluster info | grep -q '^cluster_state:ok' && break; sleep 0.05
  done
done
url="redis-cluster://$(printf '127.0.0.1:%s,' "${ports[@]}" | sed 's/,$//')"
client() { taskset -c 1 "$@"; }
peer() {  # extra args...; prints "GET rps" / "SET rps"
  client redis-benchmark --cluster -p "${ports[0]}" -d "$size" -r 10000 -t get,set --csv "$@" \
    2>/dev/null | awk -F'","' '/^"(GET|SET)"/ {gsub(/"/,"",$1); gsub(/"/,"",$2); print $1, $2}'
}
ours() { client "$bench" --url "$url" --seconds "$seconds" --size "$size" "$@"; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

results="$dir/results"
for round in $(seq 1 "$rounds"); do
  echo "== round $round"
  peer -c 50 -n $((seconds * 25000)) | while read -r t rps; do echo "peer_c50_$t $rps"; done |
    tee -a "$results"
  for mode in get set; do
    echo "ours_c50_$mode $(ours --mode "$mode" --threads 50 --timeout never | field calls_per_s)" |
      tee -a "$results"
  done
  peer -c 50 -P 16 -n $((seconds * 150000)) | while read -r t rps; do echo "peer_p16_$t $rps"; done |
    tee -a "$results"
  for mode in get_many set_many; do
    echo "ours_batch100_$mode $(ours --mode "$mode" --threads 50 --batch 100 --timeout never |
      field keys_per_s)" | tee -a "$results"
  done
done

echo "== medians of $rounds rounds (size $size B, ${seconds}s runs)"
/usr/bin/python3 - "$results" <<'PY'
import statistics, sys, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, value = line.split()
    runs[name].append(float(value))
med = {k: statistics.median(v) for k, v in runs.items()}
for k in sorted(med):
    print(f"{k:24} {med[k]:>12.0f}")
for ours, peer in [("ours_c50_get", "peer_c50_GET"), ("ours_c50_set", "peer_c50_SET"),
                   ("ours_batch100_get_many", "peer_p16_GET"),
                   ("ours_batch100_set_many", "peer_p16_SET")]:
    if ours in med and peer in med:
        print(f"{ours} / {peer} = {med[ours] / med[peer]:.2f}")
PY
