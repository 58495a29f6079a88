# shellcheck shell=bash
# storefront-demo-fresh.sh: the demo's fresh-data steps, sourced by scripts/storefront-demo
# (which defines the helpers used here: start_locust, finish_locust, progress, start_upstream,
# stop_process, field...). Two stories, each told by locust runs on /playground/hello/ with a
# short cache timeout (FRESH_TIMEOUT, 5 s), each on a storefront of its own:
#
#   When the API is down — the slow upstream is killed (SIGKILL) during the load and restarted
#   on the same port OUTAGE seconds later: once with plain cache_page (every reader after the
#   page expires gets a 502), once with --stale-if-error (the last good page is served).
#
#   Refreshing in the background — the same load on a page that does not expire during the run
#   (the steady state), then a run across several expiry boundaries: plain cache_page
#   (the first reader after each expiry waits the upstream's 2 s, and everyone behind it), with
#   --stale-while-revalidate, and with the refresh worker (`storefront worker`, a process of its
#   own on Redis with its broker in database 1, as the lesson's celery; with locmem the jobs run
#   in the storefront, --refresh-jobs, since another process cannot see a locmem cache).
#
# Knobs (environment): FRESH_TIMEOUT, FRESH_USERS, FRESH_SPAWN, OUTAGE_AT, OUTAGE, OUTAGE_RUN,
# EXPIRY_RUN (seconds), STALE_IF_ERROR, STALE_WHILE_REVALIDATE (seconds), REFRESH_INTERVAL
# (seconds between the worker's runs; default FRESH_TIMEOUT / 2), WORKERS (worker processes
# with CACHE=redis, default 2), FRESH_RUNS (the runs to do, by name, e.g. "expiry_steady
# expiry_worker"; default all).

FRESH_TIMEOUT=${FRESH_TIMEOUT:-5}
FRESH_USERS=${FRESH_USERS:-$HELLO_USERS}
if [[ $FULL = 1 ]]; then
  # The lesson's ramp (500 users, 10 a second) takes 50 s: the outage and most of the expiry
  # boundaries come once every user is in.
  FRESH_SPAWN=${FRESH_SPAWN:-10} OUTAGE_AT=${OUTAGE_AT:-60} OUTAGE=${OUTAGE:-30}
  OUTAGE_RUN=${OUTAGE_RUN:-110} EXPIRY_RUN=${EXPIRY_RUN:-90}
else
  FRESH_SPAWN=${FRESH_SPAWN:-50} OUTAGE_AT=${OUTAGE_AT:-8} OUTAGE=${OUTAGE:-20}
  OUTAGE_RUN=${OUTAGE_RUN:-35} EXPIRY_RUN=${EXPIRY_RUN:-20}
fi
# Stale pages must outlive the outage: the page may have expired just before it began.
STALE_IF_ERROR=${STALE_IF_ERROR:-$((2 * OUTAGE))}
STALE_WHILE_REVALIDATE=${STALE_WHILE_REVALIDATE:-$((6 * FRESH_TIMEOUT))}
WORKERS=${WORKERS:-2}
REFRESH_INTERVAL=${REFRESH_INTERVAL:-$(awk -v t="$FRESH_TIMEOUT" 'BEGIN {print t / 2}')}

# A line between progress lines (which a terminal rewrites in place).
note() {
  if [[ -t 1 ]]; then printf '\r\033[K  %s\n' "$*"; else printf '  %s\n' "$*"; fi
}

# Whether this storefront has a flag or a subcommand (built from a tree without the feature, it
# has not: the step says so and is skipped).
# (A subcommand is listed in --help on a line of its own: `worker --help` is no test, since
# --help wins over an unexpected argument.)
storefront_has() {
  if [[ $1 = -* ]]; then "$STOREFRONT" --help 2>/dev/null | grep -q -- "$1"; else
    "$STOREFRONT" --help 2>/dev/null | grep -qE "^ +$1 "
  fi
}

# start_fresh_storefront NAME HELLO_TIMEOUT [FLAGS...]: a storefront of its own for one run;
# sets FRESH_PID, FRESH_PORT and HOST (where start_locust sends the load).
start_fresh_storefront() {
  local name=$1 hello_timeout=$2
  shift 2
  FRESH_PORT=$(free_port)
  "$STOREFRONT" --config "$CONFIG" --port "$FRESH_PORT" \
    --upstream "http://127.0.0.1:$UPSTREAM_PORT" --upstream-delay "$DELAY" \
    --hello-timeout "$hello_timeout" --database "$RESULTS_ROOT/storefront.sqlite3" \
    "${CACHE_ARGS[@]}" "$@" >"$RUN_DIR/$name.storefront.log" 2>&1 &
  FRESH_PID=$!
  PIDS+=("$FRESH_PID")
  wait_http "$FRESH_PORT" / "$FRESH_PID" "$name.storefront"
  HOST=http://127.0.0.1:$FRESH_PORT
}

# The first reader: caches the page before the load starts, as the worker does in its run.
warm_page() { curl -fsS -o /dev/null "$HOST/playground/hello/"; }

fresh_locust() {  # fresh_locust NAME LABEL SECONDS
  start_locust "$1" "$2" /playground/hello/ hello "$FRESH_USERS" "$FRESH_SPAWN" "${3}s" 0 \
    HELLO_PATH=/playground/hello/
  echo "$3" >"$RUN_DIR/$1.seconds"
}

# ---- When the API is down ----
# outage_run NAME LABEL [FLAGS...]: the load on a warm page; the upstream killed at OUTAGE_AT s
# and started again on its port OUTAGE s later (a new process: nothing in flight survives).
outage_run() {
  local name=$1 label=$2 progress_pid
  shift 2
  start_fresh_storefront "$name" "$FRESH_TIMEOUT" "$@"
  warm_page
  fresh_locust "$name" "$label" "$OUTAGE_RUN"
  progress "$label" "$RUN_DIR/$name" "$LOCUST_PID" &
  progress_pid=$!
  sleep "$OUTAGE_AT"
  # shellcheck disable=SC2034  # read by upstream_calls: the dead process's calls still count
  UPSTREAM_CALLS_BASE=$(upstream_calls)
  stop_process "$UPSTREAM_PID" KILL
  note "the upstream is down (SIGKILL at ${OUTAGE_AT} s); it comes back in ${OUTAGE} s"
  sleep "$OUTAGE"
  start_upstream
  note "the upstream is back on port $UPSTREAM_PORT"
  wait "$progress_pid"
  finish_locust "$name"
  stop_process "$FRESH_PID"
}

# ---- Refreshing in the background ----
# The refresh jobs print one line per run: "2026-12-06 05:30:01 hello_page 2004 ms ok".
JOB_LINE='^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} [a-z_]+ [0-9]+ ms '

# job_runs [JOB] LOG...: how many runs (of JOB, default any) the LOGs show.
job_runs() {
  local job='[a-z_]+'
  [[ $1 = */* ]] || { job=$1; shift; }
  cat "$@" | grep -cE "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} $job [0-9]+ ms " || true
}

# show_page_refreshes LOG WHO: prints WHO's refreshes of the page as they happen, until locust
# ends.
show_page_refreshes() {
  local prefix='    ' line
  [[ -t 1 ]] && prefix=$'\r\033[K    '
  tail --pid="$LOCUST_PID" -n 0 -F "$1" 2>/dev/null | while IFS= read -r line; do
    if [[ $line =~ $JOB_LINE && $line = *" hello_page "* ]]; then
      printf '%s%s: %s\n' "$prefix" "$2" "$line"
    fi
  done
}

# Waits (up to 30 s) for the jobs' first refresh of the page in one of the LOGs: from then on
# no reader should find it missing.
wait_first_refresh() {
  for _ in $(seq 1 300); do
    (($(job_runs hello_page "$@") > 0)) && return 0
    sleep 0.1
  done
  die "no refresh of the page within 30 s; see $*"
}

# expiry_run NAME LABEL HELLO_TIMEOUT [FLAGS...]: the load on a warm page for EXPIRY_RUN s.
expiry_run() {
  local name=$1 label=$2
  shift 2
  start_fresh_storefront "$name" "$@"
  warm_page
  fresh_locust "$name" "$label" "$EXPIRY_RUN"
  progress "$label" "$RUN_DIR/$name" "$LOCUST_PID"
  finish_locust "$name"
  stop_process "$FRESH_PID"
}

# worker_run NAME LABEL: the refresh jobs keep the page fresh. On Redis, WORKERS processes
# (`storefront worker`, default 2) with the cache in database 2 and the schedule and leases in
# database 1, the lesson's broker: whichever holds the lease runs a job, once per interval for
# the fleet. On locmem the jobs run inside the storefront (--refresh-jobs).
worker_run() {
  local name=$1 label=$2 logs=() workers=() shown=() i pid log before
  if [[ $CACHE = redis ]]; then
    start_fresh_storefront "$name" "$FRESH_TIMEOUT"
    local broker=redis://127.0.0.1:$REDIS_PORT/1
    echo "  \$ storefront worker --cache-url $CACHE_URL --broker-url $broker" \
      "--interval $REFRESH_INTERVAL --page-host 127.0.0.1:$FRESH_PORT ...   (× $WORKERS)"
    for i in $(seq 1 "$WORKERS"); do
      logs+=("$RUN_DIR/$name.worker$i.log")
      "$STOREFRONT" worker --config "$CONFIG" --cache-url "$CACHE_URL" --broker-url "$broker" \
        --interval "$REFRESH_INTERVAL" --page-host "127.0.0.1:$FRESH_PORT" \
        --upstream "http://127.0.0.1:$UPSTREAM_PORT" --upstream-delay "$DELAY" \
        --hello-timeout "$FRESH_TIMEOUT" >"${logs[-1]}" 2>&1 &
      workers+=($!)
      PIDS+=($!)
    done
  else
    echo "  \$ storefront --refresh-jobs --interval $REFRESH_INTERVAL ...   (locmem: in-process)"
    start_fresh_storefront "$name" "$FRESH_TIMEOUT" --refresh-jobs --interval "$REFRESH_INTERVAL"
    logs=("$RUN_DIR/$name.storefront.log")
  fi
  wait_first_refresh "${logs[@]}"
  before=$(job_runs "${logs[@]}")
  local page_before
  page_before=$(job_runs hello_page "${logs[@]}")
  fresh_locust "$name" "$label" "$EXPIRY_RUN"
  for i in "${!logs[@]}"; do
    log=${logs[$i]}
    if [[ $CACHE = redis ]]; then
      show_page_refreshes "$log" "worker $((i + 1))" &
    else
      show_page_refreshes "$log" "storefront's jobs" &
    fi
    shown+=($!)
  done
  progress "$label" "$RUN_DIR/$name" "$LOCUST_PID"
  for pid in "${shown[@]}"; do wait "$pid" || true; done
  # The jobs stop (a running refresh finishes) before the calls are counted.
  for pid in "${workers[@]}"; do stop_process "$pid"; done
  stop_process "$FRESH_PID"
  finish_locust "$name"
  echo "$(($(job_runs hello_page "${logs[@]}") - page_before))" >"$RUN_DIR/$name.page_refreshes"
  echo "$(($(job_runs "${logs[@]}") - before))" >"$RUN_DIR/$name.job_runs"
}

# ---- the table ----
fresh_row() {  # fresh_row LABEL PHASE: requests, failures (and %), p50, p99, max, upstream calls
  if [[ ! -f $RUN_DIR/$2_stats.csv ]]; then
    printf "%-36s %s\n" "$1" "(not run)"
    return 0
  fi
  awk -F, -v label="$1" -v calls="$(cat "$RUN_DIR/$2.upstream_calls")" -v name="$(cat "$RUN_DIR/$2.row")" '
    $2 == name {
      printf "%-36s %8s %8s %6.1f%% %7s %7s %7.0f %8s\n", label, $3, $4, ($3 ? 100 * $4 / $3 : 0),
        $12, $19, $8, calls
    }' "$RUN_DIR/$2_stats.csv"
}

# p99 of PHASE over the steady state's, as "3.5x" (or "-" when not run).
p99_ratio() {
  [[ -f $RUN_DIR/$1_stats.csv ]] || { echo "-"; return; }
  awk -v a="$(field "$1" 19)" -v b="$(field expiry_steady 19)" \
    'BEGIN {if (b < 1) b = 1; printf "%.1fx", a / b}'
}

# Upstream calls of PHASE per WINDOW seconds of its run, as "0.8" (or "-" when not run).
calls_per() {
  [[ -f $RUN_DIR/$1_stats.csv ]] || { echo "-"; return; }
  awk -v calls="$(cat "$RUN_DIR/$1.${3:-upstream_calls}")" -v run="$(cat "$RUN_DIR/$1.seconds")" \
    -v window="$2" 'BEGIN {printf "%.2f", calls / (run / window)}'
}

failures_of() {  # failures_of PHASE → "174 (54.0%)", or "-" when not run
  [[ -f $RUN_DIR/$1_stats.csv ]] || { echo "-"; return; }
  awk -v n="$(field "$1" 3)" -v f="$(field "$1" 4)" 'BEGIN {printf "%d (%.1f%%)", f, n ? 100 * f / n : 0}'
}

# The worker's line: its page refreshes during the run, and the storefront's own upstream calls
# (all the calls but the jobs' runs).
worker_summary() {
  [[ -f $RUN_DIR/expiry_worker.job_runs ]] || return 0
  local refreshes own
  refreshes=$(cat "$RUN_DIR/expiry_worker.page_refreshes")
  own=$(($(cat "$RUN_DIR/expiry_worker.upstream_calls") - $(cat "$RUN_DIR/expiry_worker.job_runs")))
  local who="the storefront's jobs"
  [[ $CACHE = redis ]] && who="$WORKERS workers sharing the broker"
  echo "the worker: $refreshes page refreshes in ${EXPIRY_RUN} s ($who), one every" \
    "$(awk -v n="$refreshes" -v s="$EXPIRY_RUN" 'BEGIN {printf "%.1f", n ? s / n : 0}') s;" \
    "the storefront's own upstream calls: $own"
}

fresh_table() {
  printf "%-36s %8s %8s %7s %7s %7s %7s %8s\n" "run (hello_timeout ${FRESH_TIMEOUT} s)" \
    "requests" "failures" "%" "p50" "p99" "max" "upstream"
  printf "%-36s %8s %8s %7s %7s %7s %7s %8s\n" "" "" "" "" "(ms)" "(ms)" "(ms)" "calls"
  fresh_row "API down ${OUTAGE} s, cache_page" outage_plain
  fresh_row "API down ${OUTAGE} s, stale-if-error=${STALE_IF_ERROR}" outage_stale
  fresh_row "${EXPIRY_RUN} s, no expiry (steady state)" expiry_steady
  fresh_row "${EXPIRY_RUN} s of expiries, cache_page" expiry_plain
  fresh_row "... stale-while-revalidate=${STALE_WHILE_REVALIDATE}" expiry_swr
  fresh_row "... worker every ${REFRESH_INTERVAL} s" expiry_worker
  echo
  echo "API down for ${OUTAGE} s: failed requests $(failures_of outage_plain) with cache_page" \
    "alone, $(failures_of outage_stale) with stale-if-error"
  echo "p99 across the expiries, over the steady state's ($(field expiry_steady 19) ms):" \
    "$(p99_ratio expiry_plain) with cache_page alone,"
  echo "  $(p99_ratio expiry_swr) with stale-while-revalidate, $(p99_ratio expiry_worker) with the worker"
  echo "upstream calls per ${FRESH_TIMEOUT} s of run (the page's lifetime):" \
    "$(calls_per expiry_plain "$FRESH_TIMEOUT") with cache_page alone," \
    "$(calls_per expiry_swr "$FRESH_TIMEOUT") with stale-while-revalidate"
  worker_summary
  echo "cache: $CACHE; users $FRESH_USERS, spawn rate $FRESH_SPAWN/s; upstream delay ${DELAY}s;" \
    "upstream killed ${OUTAGE_AT} s into the outage runs"
}

# wanted RUN: whether FRESH_RUNS (default: all) names RUN (outage_plain, outage_stale,
# expiry_steady, expiry_plain, expiry_swr, expiry_worker).
wanted() { [[ ${FRESH_RUNS:-all} = all || " $FRESH_RUNS " = *" $1 "* ]]; }

# needs RUN FEATURE WHAT: whether RUN is wanted and this storefront has FEATURE (else says so).
needs() {
  wanted "$1" || return 1
  storefront_has "$2" && return 0
  echo "  skipped: this storefront has no $3"
  return 1
}

run_fresh_data_steps() {
  local lesson_host=$HOST
  echo
  echo "== When the API is down: the upstream killed for ${OUTAGE} s during the load =="
  if wanted outage_plain; then outage_run outage_plain "API down, cache_page"; fi
  if needs outage_stale --stale-if-error "--stale-if-error flag"; then
    outage_run outage_stale "API down, stale-if-error" --stale-if-error "$STALE_IF_ERROR"
  fi
  echo
  echo "== Refreshing in the background: ${EXPIRY_RUN} s across expiries every ${FRESH_TIMEOUT} s =="
  if wanted expiry_steady; then expiry_run expiry_steady "no expiry, cache_page" 3600; fi
  if wanted expiry_plain; then expiry_run expiry_plain "expiries, cache_page" "$FRESH_TIMEOUT"; fi
  if needs expiry_swr --stale-while-revalidate "--stale-while-revalidate flag"; then
    expiry_run expiry_swr "expiries, stale-while-revalidate" "$FRESH_TIMEOUT" \
      --stale-while-revalidate "$STALE_WHILE_REVALIDATE"
  fi
  if needs expiry_worker worker "worker command" &&
    needs expiry_worker --refresh-jobs "--refresh-jobs flag"; then
    worker_run expiry_worker "expiries, worker"
  fi
  echo
  fresh_table | tee "$RUN_DIR/fresh-table.txt"
  HOST=$lesson_host
}
