#!/usr/bin/env bash
# cachekit proxy against nginx proxy_cache and Varnish, all in front of one origin.
#
#   bench/peers/run.sh [BUILD_DIR] [ROUNDS] [SECONDS]        e.g. bench/peers/run.sh build-rel 5 10
#     BUILD_DIR  a Release build with the targets slow_upstream and cachekit_cli (default build-rel)
#     ROUNDS     interleaved rounds, each measuring every peer (default 5)
#     SECONDS    wrk duration per measurement (default 10)
#   Environment: CACHEKIT (the cachekit binary; default BUILD_DIR/cachekit), OPEN_RATE
#   (requests/s of the open-loop runs; default half of nginx's median 1 KB rate),
#   OPEN_CONNECTIONS (16), STAMPEDE (concurrent cold requests, 100), MAX_LOAD (1.0: above this
#   1-minute load average the machine counts as busy and the run says so), WAIT_IDLE (seconds to
#   wait for the load to fall below MAX_LOAD first; 0), BOOST (1: run the servers and wrk at
#   autogroup nice -20, root only, as BENCHMARKS.md does against other work on the machine;
#   plain nice does nothing there, each session being its own scheduler autogroup).
#
# The origin is apps/slow-upstream (GET /bytes/{n}?max_age=S&delay=D; /stats counts the calls),
# pinned to CPU 1. In front of it, each pinned to CPU 0 with all its processes and threads:
#   nginx     proxy_cache, 1 worker, keep-alive both sides, proxy_cache_lock on (nginx.conf.in)
#   varnish   malloc storage, -p thread_pools=1, the built-in VCL (varnish.vcl.in)
#   cachekit-locmem  `BUILD_DIR/cachekit proxy --listen 127.0.0.1:P --upstream 127.0.0.1:O
#                    --io-threads 1 --quiet`: its default in-process cache, no access log
#   cachekit-redis   the same after `--config FILE --cache default`, a TOML file whose default
#                    cache is a private redis-server (on CPU 0 too; its CPU time counts as the
#                    proxy's, and is also reported apart)
# A cachekit row reads "not available" when BUILD_DIR/cachekit has no working `proxy` command.
#
# 1. Hits, closed loop: every peer answers /bytes/1024 and /bytes/102400 (max-age=3600); each is
#    warmed and checked to be a hit (nginx X-Cache-Status, Varnish X-Cache, cachekit
#    Cache-Status), then measured with `taskset -c 1 wrk -t1 -c50 -dSECONDS --latency`. Rounds
#    interleave the peers, the first peer rotating each round. Per run: req/s, wrk's p99, server
#    CPU per request (utime+stime from /proc/PID/stat of the peer's processes, before and after,
#    over the requests wrk completed) and the origin calls during the run (0 when all were hits).
# 2. Open loop: the 1 KB URL at a constant rate, half of nginx's median 1 KB rate from step 1,
#    with open_loop.lua (wrk has no constant-rate mode and Debian 12 has no wrk2; the script's
#    header explains the pacing); p99 from each request's scheduled send time.
# 3. Stampede: STAMPEDE requests released together (stampede.py) for a fresh URL the origin
#    answers after 0.5 s, once per peer (nginx also without proxy_cache_lock); the origin's call
#    count tells how many got through.
# Prints a markdown table of medians per peer and body size, the open-loop and stampede tables,
# and the load average at start and end; every raw figure goes to a results file under a
# temporary directory, whose path is printed. Everything started here is stopped on exit,
# Ctrl-C included.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-rel}
rounds=${2:-5}
seconds=${3:-10}
open_connections=${OPEN_CONNECTIONS:-16}
stampede_n=${STAMPEDE:-100}
max_load=${MAX_LOAD:-1.0}
origin_bin=$build/apps/slow-upstream/slow-upstream
cli_bin=${CACHEKIT:-$build/cachekit}
sizes=(1024 102400)

[ -x "$origin_bin" ] || { echo "missing $origin_bin: cmake --build $build -j1 --target slow_upstream" >&2; exit 1; }
for tool in wrk nginx varnishd redis-server curl taskset python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

load() { cut -d' ' -f1-3 /proc/loadavg; }
busy() { awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v m="$max_load" 'BEGIN { exit !(l > m) }'; }
if [ "${WAIT_IDLE:-0}" -gt 0 ] && busy; then
  echo "load average $(load): waiting up to ${WAIT_IDLE}s for it to fall below $max_load"
  for _ in $(seq $((WAIT_IDLE / 5))); do busy || break; sleep 5; done
fi
echo "load average at start: $(load) ($(nproc) CPUs)"
others=$(for name in nginx varnishd cache-main redis-server wrk slow-upstream cachekit; do
  pgrep -a -x "$name"; done || true)
[ -n "$others" ] && echo "warning: other servers or load generators are running:"$'\n'"$others" >&2
if busy; then
  echo "warning: the machine is not idle (1-minute load above $max_load): the figures will be" \
    "noisy; compare peers only within this run" >&2
fi

scratch=$(mktemp -d /tmp/cachekit-peers.XXXXXX)
chmod 755 "$scratch"  # nginx's worker runs as nobody
results=$scratch/results.txt
started=()  # pids to stop on exit
own_nice=$(awk '{print $NF}' /proc/self/autogroup 2>/dev/null || echo 0)
cleanup() {
  set +e
  local pid
  [ "${BOOST:-0}" = 1 ] && echo "$own_nice" >/proc/self/autogroup
  for pid in "${started[@]}"; do kill "$pid" 2>/dev/null; done
  for _ in $(seq 50); do
    local alive=0
    for pid in "${started[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${started[@]}"; do kill -9 "$pid" 2>/dev/null; done
  # Keep the results, configurations and logs; drop the caches and Varnish's shared memory.
  rm -rf "$scratch/nginx/cache" "$scratch/varnish/work" "$scratch/redis/dump.rdb"
  echo "load average at end: $(load)"
  echo "raw results: $results (logs and configurations beside it)"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# BOOST: this session (so wrk) now, each server's session once started (nginx makes its own).
boost() { [ "${BOOST:-0}" = 1 ] || return 0; local p; for p in $(family "$@"); do echo -20 >"/proc/$p/autogroup"; done; }
[ "${BOOST:-0}" = 1 ] && echo -20 >/proc/self/autogroup

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {  # port pid → 0 once anything answers HTTP on port; 1 if pid died or 10 s passed
  for _ in $(seq 200); do
    kill -0 "$2" 2>/dev/null || return 1
    [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/")" != 000 ] && return 0
    sleep 0.05
  done
  return 1
}

# A process and its children (nginx's worker, Varnish's child, ...).
family() { local p; for p in "$@"; do echo "$p"; pgrep -P "$p" || true; done | sort -u; }

# CPU time so far of the given processes and their children, in clock ticks.
cpu_ticks() {
  local total=0 p
  for p in $(family "$@"); do
    # utime and stime: fields 14 and 15, counted after the ")" that ends the command name.
    [ -r "/proc/$p/stat" ] && total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}

# Warns unless every thread of the processes may run on CPU 0 only.
check_pinned() {  # name pid...
  local p t
  for p in $(family "${@:2}"); do
    for t in /proc/"$p"/task/*; do
      local cpus
      cpus=$(awk '/Cpus_allowed_list/ {print $2}' "$t/status" 2>/dev/null || echo 0)
      [ "$cpus" = 0 ] || echo "warning: $1: thread ${t##*/} of $p may run on CPUs $cpus" >&2
    done
  done
}

# "open_loop a=1 b=2" → "1 2": the values of a line of name=value pairs, in order.
values() { tr ' ' '\n' <<<"$1" | sed -n 's/^[a-z0-9_]*=//p' | tr '\n' ' '; }

origin_calls() { curl -sf -m 10 "http://127.0.0.1:$origin_port/stats" | grep -o '"bytes_calls":[0-9]*' | cut -d: -f2; }

# Every server runs in a session of its own (setsid), as nginx does by daemonizing. Each session
# is a scheduler autogroup, and an autogroup's CPU share is split across the CPUs by where its
# threads run: a server left in this script's session would share one group with wrk, whose
# threads on CPU 1 would shrink the group's share of CPU 0 whenever other work runs there (an
# open-loop p99 in seconds instead of a third of a millisecond, for the peer that stayed).

# ---- the origin, on CPU 1 (idle while the peers answer hits) ----
origin_port=$(free_port)
setsid taskset -c 1 "$origin_bin" --port "$origin_port" >"$scratch/origin.log" 2>&1 &
origin_pid=$!
started+=("$origin_pid")
wait_http "$origin_port" "$origin_pid" || { echo "the origin did not start: $scratch/origin.log" >&2; exit 1; }
for size in "${sizes[@]}"; do
  curl -sf -m 10 "http://127.0.0.1:$origin_port/bytes/$size" -o "$scratch/body-$size"
done

# ---- the peers, each on CPU 0 ----
peers=(nginx varnish cachekit-locmem cachekit-redis)
declare -A port pids hit_header hit_pattern missing aux_pid
launcher=()  # a command that starts the proxy (start_cachekit), with what must share its session
hit_header=([nginx]=X-Cache-Status [varnish]=X-Cache [cachekit-locmem]=Cache-Status
  [cachekit-redis]=Cache-Status)
hit_pattern=([nginx]='^HIT$' [varnish]='^HIT$' [cachekit-locmem]=';[[:space:]]*hit([[:space:]]*[;,]|$)'
  [cachekit-redis]=';[[:space:]]*hit([[:space:]]*[;,]|$)')

start_nginx() {
  port[nginx]=$(free_port)
  mkdir -p "$scratch/nginx"
  sed -e "s|@PORT@|${port[nginx]}|" -e "s|@ORIGIN_PORT@|$origin_port|" -e "s|@ROOT@|$scratch/nginx|" \
    bench/peers/nginx.conf.in >"$scratch/nginx/nginx.conf"
  taskset -c 0 nginx -p "$scratch/nginx/" -c nginx.conf -e stderr 2>"$scratch/nginx/stderr.log"
  for _ in $(seq 50); do [ -s "$scratch/nginx/nginx.pid" ] && break; sleep 0.05; done
  [ -s "$scratch/nginx/nginx.pid" ] || { echo "nginx did not start: $scratch/nginx/stderr.log" >&2; exit 1; }
  pids[nginx]=$(cat "$scratch/nginx/nginx.pid")
  started+=("${pids[nginx]}")
  wait_http "${port[nginx]}" "${pids[nginx]}" || missing[nginx]="did not start (see $scratch/nginx)"
}

start_varnish() {
  port[varnish]=$(free_port)
  mkdir -p "$scratch/varnish"
  sed -e "s|@ORIGIN_PORT@|$origin_port|" bench/peers/varnish.vcl.in >"$scratch/varnish/peers.vcl"
  # -j none: run as the invoking user, whose files these are.
  setsid taskset -c 0 varnishd -F -j none -n "$scratch/varnish/work" -a "127.0.0.1:${port[varnish]}" \
    -f "$scratch/varnish/peers.vcl" -s malloc,256m -p thread_pools=1 -T none \
    >"$scratch/varnish/varnishd.log" 2>&1 &
  pids[varnish]=$!
  started+=("${pids[varnish]}")
  wait_http "${port[varnish]}" "${pids[varnish]}" || missing[varnish]="did not start (see $scratch/varnish)"
}

start_cachekit() {  # peer [--config FILE --cache ALIAS]; $launcher runs before the proxy
  local peer=$1
  port[$peer]=$(free_port)
  # --config and --cache are options of `cachekit` itself, so they come before `proxy`.
  setsid "${launcher[@]}" taskset -c 0 "$cli_bin" "${@:2}" proxy --listen "127.0.0.1:${port[$peer]}" \
    --upstream "127.0.0.1:$origin_port" --io-threads 1 "${proxy_quiet[@]}" >"$scratch/$peer.log" 2>&1 &
  pids[$peer]=$!
  started+=("${pids[$peer]}")
  wait_http "${port[$peer]}" "${pids[$peer]}" || missing[$peer]="did not start (see $scratch/$peer.log)"
}

start_nginx
start_varnish
proxy_help=$( ([ -x "$cli_bin" ] && timeout 10 "$cli_bin" proxy --help 2>&1) || true)
# Like nginx here (access_log off), no access log: one write per request otherwise; and, like its
# keepalive_requests 1000000, client connections are not closed after the server's default 1,000.
proxy_quiet=()
grep -q -- --quiet <<<"$proxy_help" && proxy_quiet=(--quiet)
grep -q -- --max-requests-per-connection <<<"$proxy_help" &&
  proxy_quiet+=(--max-requests-per-connection 1000000)
if grep -q -- --upstream <<<"$proxy_help"; then
  start_cachekit cachekit-locmem
  redis_port=$(free_port)
  mkdir -p "$scratch/redis"
  cat >"$scratch/redis/proxy.toml" <<EOF
[caches.default]
backend = "redis"
location = "redis://127.0.0.1:$redis_port/0"
EOF
  # The Redis server is part of this peer: started in the proxy's session (one autogroup, as
  # nginx's processes share one), it becomes the proxy's child, so its CPU time counts with the
  # proxy's; the proxy's own share is reported apart as well.
  # shellcheck disable=SC2016 # expanded by the inner bash
  launcher=(bash -c '
    taskset -c 0 redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "$2" \
      >"$2/redis.log" 2>&1 &
    echo $! >"$2/redis.pid"
    for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && break; sleep 0.05; done
    shift 2
    exec "$@"' launcher "$redis_port" "$scratch/redis")
  start_cachekit cachekit-redis --config "$scratch/redis/proxy.toml" --cache default
  launcher=()
  redis_pid=$(cat "$scratch/redis/redis.pid" 2>/dev/null || true)
  if [ -n "$redis_pid" ]; then
    started+=("$redis_pid")
    aux_pid[cachekit-redis]=$redis_pid
  fi
else
  missing[cachekit-locmem]="$cli_bin has no proxy command"
  missing[cachekit-redis]="$cli_bin has no proxy command"
fi
for peer in "${peers[@]}"; do
  [ -n "${missing[$peer]:-}" ] && continue
  # shellcheck disable=SC2086 # a list of pids
  check_pinned "$peer" ${pids[$peer]}
  # shellcheck disable=SC2086
  boost ${pids[$peer]}
done

# ---- hits: warm, check, and see that the body is the origin's ----
hit_path() { echo "/bytes/$1?max_age=3600"; }
header_value() { tr -d '\r' | awk -v h="$1" 'BEGIN {IGNORECASE=1} index(tolower($0), tolower(h) ":") == 1 {sub(/^[^:]*:[ \t]*/, ""); print; exit}'; }

for peer in "${peers[@]}"; do
  [ -n "${missing[$peer]:-}" ] && { echo "$peer: not available: ${missing[$peer]}"; continue; }
  for size in "${sizes[@]}"; do
    url="http://127.0.0.1:${port[$peer]}$(hit_path "$size")"
    for _ in 1 2 3; do curl -s -m 10 -o "$scratch/got" -D "$scratch/headers" "$url" || true; done
    cp "$scratch/headers" "$scratch/headers-$size"
    value=$(header_value "${hit_header[$peer]}" <"$scratch/headers")
    if ! cmp -s "$scratch/got" "$scratch/body-$size"; then
      missing[$peer]="the $size-byte body differs from the origin's"
    elif ! grep -Eiq "${hit_pattern[$peer]}" <<<"$value"; then
      missing[$peer]="the third request for /bytes/$size was not a hit (${hit_header[$peer]}: $value)"
    fi
  done
  if [ -n "${missing[$peer]:-}" ]; then
    echo "$peer: left out: ${missing[$peer]}; headers:"; sed 's/^/  /' "$scratch/headers"
    continue
  fi
  echo "$peer: hit headers for /bytes/1024:"; sed 's/^/  /' "$scratch/headers-1024"
  for size in "${sizes[@]}"; do
    timeout 20 taskset -c 1 wrk -t1 -c50 -d2s "http://127.0.0.1:${port[$peer]}$(hit_path "$size")" >/dev/null
  done
done

# CPU microseconds per request: clock ticks, requests → "12.34" ("nan" without requests).
per_request() {
  awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="${2:-0}" \
    'BEGIN {if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print "nan"}'
}

# wrk's "1.23ms" / "812.00us" / "1.02s" → microseconds.
to_us() { awk '{v = $1 + 0; if ($1 ~ /us$/) print v; else if ($1 ~ /ms$/) print v * 1000;
  else if ($1 ~ /m$/) print v * 60e6; else print v * 1e6}'; }

measure() {  # round peer size
  local round=$1 peer=$2 size=$3 before after aux_before aux_after calls_before calls_after
  local out requests rps p99 errors
  # shellcheck disable=SC2086
  {
    calls_before=$(origin_calls)
    before=$(cpu_ticks ${pids[$peer]})
    aux_before=$(cpu_ticks ${aux_pid[$peer]:-})
    out=$(timeout $((seconds + 15)) taskset -c 1 wrk -t1 -c50 -d"${seconds}s" --latency \
      "http://127.0.0.1:${port[$peer]}$(hit_path "$size")")
    after=$(cpu_ticks ${pids[$peer]})
    aux_after=$(cpu_ticks ${aux_pid[$peer]:-})
    calls_after=$(origin_calls)
  }
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out" | to_us)
  [ -n "$requests" ] || { echo "  $peer $size: wrk failed" >&2; requests=0 rps=0 p99=0; }
  errors=$(awk '/Socket errors/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} /Non-2xx/ {e += $NF}
    END {print e + 0}' <<<"$out")
  local us proxy_us
  us=$(per_request $((after - before)) "$requests")
  proxy_us=$(per_request $((after - before - aux_after + aux_before)) "$requests")
  printf '  %-16s %6s B  %10s req/s  p99 %8.0f us  %6s CPU us/req  origin calls %s  errors %s\n' \
    "$peer" "$size" "$rps" "$p99" "$us" $((calls_after - calls_before)) "$errors"
  echo "closed $round $peer $size $rps $p99 $us $proxy_us $((calls_after - calls_before)) $errors $requests" >>"$results"
}

{
  echo "# closed round peer size rps p99_us cpu_us_per_req proxy_cpu_us_per_req origin_calls errors requests"
  echo "# open round peer size target_rps achieved_rps p50_us p99_us p999_us max_us wrk_p99_us cpu_us_per_req errors"
  echo "# stampede - peer variant origin_calls requests ok first_s last_s cache_header_values"
  echo "# load start $(load)"
} >"$results"
for peer in "${peers[@]}"; do
  [ -n "${missing[$peer]:-}" ] && echo "unavailable - $peer ${missing[$peer]}" >>"$results"
done

echo "== hits, closed loop: wrk -t1 -c50 -d${seconds}s, $rounds rounds"
for round in $(seq "$rounds"); do
  echo "-- round $round"
  for i in "${!peers[@]}"; do
    peer=${peers[$(((i + round - 1) % ${#peers[@]}))]}
    [ -n "${missing[$peer]:-}" ] && continue
    for size in "${sizes[@]}"; do measure "$round" "$peer" "$size"; done
  done
done

# ---- open loop at half of nginx's median 1 KB rate ----
open_loop() {  # round peer
  local round=$1 peer=$2 before after line us
  local target achieved requests p50 p99 p999 max wrk_p99 http_errors errors
  # shellcheck disable=SC2086
  before=$(cpu_ticks ${pids[$peer]})
  line=$(timeout $((seconds + 30)) taskset -c 1 wrk -t"$open_connections" -c"$open_connections" \
    -d"${seconds}s" -s bench/peers/open_loop.lua "http://127.0.0.1:${port[$peer]}$(hit_path 1024)" \
    -- "$open_rate" "$open_connections" | grep '^open_loop' || true)
  # shellcheck disable=SC2086
  after=$(cpu_ticks ${pids[$peer]})
  read -r target achieved requests p50 _ p99 p999 max wrk_p99 http_errors errors \
    <<<"$(values "$line")"
  us=$(per_request $((after - before)) "$requests")
  printf '  %-16s %7s req/s  p50 %6s us  p99 %7s us  p99.9 %7s us  (wrk from the send: p99 %s us)' \
    "$peer" "$achieved" "$p50" "$p99" "$p999" "$wrk_p99"
  printf '  %s CPU us/req  errors %s\n' "$us" $((http_errors + errors))
  echo "open $round $peer 1024 $target $achieved $p50 $p99 $p999 $max $wrk_p99 $us" \
    "$((http_errors + errors))" >>"$results"
}

open_rate=${OPEN_RATE:-$(awk '$1 == "closed" && $3 == "nginx" && $4 == 1024 {print $5}' "$results" |
  python3 -c 'import statistics, sys; v = [float(x) for x in sys.stdin]; print(round(statistics.median(v) / 2) if v else "")')}
if [ -n "$open_rate" ]; then
  echo "== open loop: 1 KB at $open_rate req/s (open_loop.lua, $open_connections connections), $rounds rounds"
  for round in $(seq "$rounds"); do
    echo "-- round $round"
    for i in "${!peers[@]}"; do
      peer=${peers[$(((i + round - 1) % ${#peers[@]}))]}
      [ -n "${missing[$peer]:-}" ] || open_loop "$round" "$peer"
    done
  done
else
  echo "== open loop skipped: no nginx 1 KB rate (set OPEN_RATE)"
fi

# ---- cold-key stampede ----
echo "== stampede: $stampede_n requests released together for a fresh URL the origin answers after 0.5 s"
stampede() {  # peer variant path_prefix
  local peer=$1 variant=$2 prefix=$3 before line after requests ok first last cache
  local path="$prefix/bytes/1024?max_age=3600&delay=0.5&key=$variant-$$-$RANDOM"
  before=$(origin_calls)
  line=$(python3 bench/peers/stampede.py "${port[$peer]}" "$path" "$stampede_n" "${hit_header[$peer]}")
  sleep 0.6  # a proxy that sent misses on after answering them would show it now
  after=$(origin_calls)
  echo "  $variant: origin calls $((after - before)); $line"
  read -r requests ok first last cache <<<"$(values "$line")"
  echo "stampede - $peer $variant $((after - before)) $requests $ok $first $last $cache" >>"$results"
}
for peer in "${peers[@]}"; do
  [ -n "${missing[$peer]:-}" ] && continue
  case $peer in
    nginx) stampede nginx "nginx-lock" ""; stampede nginx "nginx-no-lock" /nolock ;;
    *) stampede "$peer" "$peer" "" ;;
  esac
done
echo "# load end $(load)" >>"$results"

python3 bench/peers/summary.py "$results"
