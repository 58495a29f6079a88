#!/usr/bin/env bash
# django_proxy_e2e_test.sh BUILD_DIR: the lesson's Django app (examples/django-behind-proxy),
# served by gunicorn, behind `cachekit proxy`, end to end:
#
#   curl ──> cachekit proxy ──> gunicorn (2 workers, Django) ──> slow-upstream (/delay/N)
#
# What it shows:
#   (a) the slow page's first request is a miss (Cache-Status: cachekit; fwd=...) and waits the
#       API's delay; the second is a hit (cachekit; hit, with an Age), fast, with the same body;
#       the API was called once;
#   (b) 20 concurrent first requests for another slow URL make one API call (coalescing);
#   (c) the private /account/ page, for two users' session cookies and for none, is each
#       reader's own and is never a hit;
#   (d) the headers Django set (Cache-Control, Vary, ...) reach the client unchanged.
# The app's own behaviour (no proxy) is checked first; it is the reference (d) compares with.
#
# Needs Debian's python3-django and gunicorn (/usr/bin/python3), curl, and BUILD_DIR/cachekit
# and BUILD_DIR/apps/slow-upstream/slow-upstream.
# Knobs (environment): DELAY (seconds the API waits, default 1), PYTHON (default /usr/bin/python3).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
app_dir=$(cd "$here/../../examples/django-behind-proxy" && pwd)
python=${PYTHON:-/usr/bin/python3}
cachekit=$build/cachekit
upstream_bin=$build/apps/slow-upstream/slow-upstream
delay=${DELAY:-1}
burst=20
# A hit must come back in under half the API's delay.
fast=$(awk -v d="$delay" 'BEGIN { print d / 2 }')

die() {
  echo "FATAL: $*" >&2
  exit 1
}

[[ -x $cachekit ]] || die "no $cachekit"
[[ -x $upstream_bin ]] || die "no $upstream_bin"
command -v curl >/dev/null || die "curl is not installed"
"$python" -c 'import django, gunicorn' 2>/dev/null ||
  die "$python cannot import django and gunicorn (apt-get install python3-django gunicorn)"

work=$(mktemp -d)
# The processes started here, stopped at exit (last started, first stopped).
pids=()
names=()

# stop_pid PID: TERM, then KILL if it is still there after 10 s.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$? i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${pids[i]}"; done
  if ((status != 0)); then
    for i in "${!names[@]}"; do
      echo "---- last lines of ${names[i]}.log ----" >&2
      tail -n 25 "$work/${names[i]}.log" >&2 || true
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME COMMAND...: runs COMMAND in the background, its output in $work/NAME.log.
start() {
  local name=$1
  shift
  (cd "$work" && exec "$@") >"$work/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

# port_from_log NAME REGEX: waits (up to 15 s) for the line NAME's process prints with the port
# it listens on; prints the port (REGEX's last number).
port_from_log() {
  local name=$1 regex=$2 pid=${pids[-1]} line
  for _ in $(seq 1 150); do
    line=$(grep -oE "$regex" "$work/$name.log" | head -n 1 || true)
    if [[ -n $line ]]; then
      grep -oE '[0-9]+$' <<<"$line"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || die "$name exited before listening"
    sleep 0.1
  done
  die "$name printed no port in 15 s"
}

# wait_http NAME URL: waits (up to 15 s) until URL answers 200 (NAME's process alive meanwhile).
wait_http() {
  local name=$1 url=$2 pid=${pids[-1]}
  for _ in $(seq 1 150); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true) = 200 ]]; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || die "$name exited before answering $url"
    sleep 0.1
  done
  die "$name did not answer $url with 200 in 15 s"
}

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- assertions: each prints what it expected and what it got, and the run goes on ----
failures=0
pass() { echo "  ok: $1"; }
fail() {
  echo "  FAIL: $1" >&2
  echo "        expected: $2" >&2
  echo "        got:      $3" >&2
  failures=$((failures + 1))
}
expect_eq() {  # expect_eq WHAT EXPECTED GOT
  if [[ $3 == "$2" ]]; then pass "$1 ($3)"; else fail "$1" "'$2'" "'$3'"; fi
}
expect_match() {  # expect_match WHAT REGEX GOT
  if [[ $3 =~ $2 ]]; then pass "$1 ($3)"; else fail "$1" "matching /$2/" "'$3'"; fi
}
expect_no_match() {  # expect_no_match WHAT REGEX GOT
  if [[ $3 =~ $2 ]]; then fail "$1" "not matching /$2/" "'$3'"; else pass "$1 ($3)"; fi
}
expect_at_least() {  # expect_at_least WHAT MIN GOT (numbers, fractions allowed)
  if awk -v g="$3" -v m="$2" 'BEGIN { exit !(g >= m) }'; then pass "$1 ($3 >= $2)"; else
    fail "$1" ">= $2" "$3"
  fi
}
expect_below() {  # expect_below WHAT MAX GOT
  if awk -v g="$3" -v m="$2" 'BEGIN { exit !(g < m) }'; then pass "$1 ($3 < $2)"; else
    fail "$1" "< $2" "$3"
  fi
}
expect_same_file() {  # expect_same_file WHAT FILE1 FILE2
  if cmp -s "$2" "$3"; then pass "$1"; else
    fail "$1" "identical bodies" "they differ: $(diff "$2" "$3" | grep '^[<>]' | head -n 4 | tr '\n' ' ')"
  fi
}

# ---- HTTP helpers ----
# fetch NAME URL [CURL_ARGS...]: GET (or whatever CURL_ARGS say) URL; headers in $work/NAME.h,
# body in $work/NAME.b; sets STATUS and SECONDS_TAKEN.
fetch() {
  local name=$1 url=$2 out
  shift 2
  out=$(curl -sS --max-time 30 -D "$work/$name.h" -o "$work/$name.b" \
    -w '%{http_code} %{time_total}' "$@" "$url") || out="000 0"
  STATUS=${out% *}
  SECONDS_TAKEN=${out#* }
}

# trim TEXT: sets TRIMMED to TEXT without its leading and trailing blanks (no subshell).
trim() {
  TRIMMED=${1#"${1%%[![:space:]]*}"}
  TRIMMED=${TRIMMED%"${TRIMMED##*[![:space:]]}"}
}

# header NAME FIELD: FIELD's value in the response NAME (its lines joined with ", "; empty if
# absent).
header() {
  local line name out="" want=${2,,}
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ $line == *:* ]] || continue
    name=${line%%:*}
    [[ ${name,,} == "$want" ]] || continue
    trim "${line#*:}"
    out=${out:+$out, }$TRIMMED
  done <"$work/$1.h"
  printf '%s\n' "$out"
}

# cachekit_status NAME: the cachekit member of the response's Cache-Status (RFC 9211: a list of
# members, one per cache, each its name and ";"-separated parameters).
cachekit_status() {
  local members member
  IFS=, read -ra members <<<"$(header "$1" Cache-Status)"
  for member in "${members[@]}"; do
    trim "$member"
    if [[ $TRIMMED =~ ^cachekit(;|$) ]]; then
      printf '%s\n' "$TRIMMED"
      return 0
    fi
  done
}

# The API's count of /delay calls, once none is in flight (up to 15 s). /stats answers
# {"delay_calls":N,"delay_in_flight":M}.
upstream_calls() {
  local stats
  for _ in $(seq 1 150); do
    stats=$(curl -fsS --max-time 5 "http://127.0.0.1:$upstream_port/stats")
    [[ $stats =~ \"delay_in_flight\":\ *0[,}] ]] && break
    sleep 0.1
  done
  [[ $stats =~ \"delay_calls\":\ *([0-9]+) ]] || die "unexpected /stats: $stats"
  echo "${BASH_REMATCH[1]}"
}

# login NAME BASE USER: signs USER in (POST /login/); the session cookie in $work/NAME.jar.
login() {
  local name=$1 base=$2 user=$3
  fetch "$name.login" "$base/login/" -c "$work/$name.jar" --data-urlencode "user=$user"
  expect_eq "POST /login/ as $user answers a redirect" 302 "$STATUS"
  if grep -q sessionid "$work/$name.jar"; then pass "$user got a session cookie"; else
    fail "$user got a session cookie" "a sessionid cookie in the jar" "$(grep -v '^#' "$work/$name.jar" | tr '\n' ' ')"
  fi
}

signed_in_as() {  # signed_in_as NAME: the user the /account/ page NAME shows ("" if none)
  sed -nE 's|.*Signed in as <span id="user">([^<]*)</span>.*|\1|p' "$work/$1.b"
}
rendered_at() {  # rendered_at NAME: the page's rendering time
  sed -nE 's|.*Rendered at (<span id="rendered-at">)?([^ <]+)(</span>)?[ .].*|\2|p' "$work/$1.b" | head -n 1
}

# ---- the stack ----
echo "starting slow-upstream (delay ${delay} s), gunicorn (2 workers) and the Django app"
start upstream "$upstream_bin" --address 127.0.0.1 --port 0
upstream_port=$(port_from_log upstream 'listening on http://127\.0\.0\.1:[0-9]+')
wait_http upstream "http://127.0.0.1:$upstream_port/stats"

start gunicorn env PYTHONDONTWRITEBYTECODE=1 \
  UPSTREAM_URL="http://127.0.0.1:$upstream_port/delay/$delay" \
  "$python" -m gunicorn --chdir "$app_dir" --workers 2 --bind 127.0.0.1:0 \
  --graceful-timeout 5 --access-logfile - storefront.wsgi:application
gunicorn_port=$(port_from_log gunicorn 'Listening at: http://127\.0\.0\.1:[0-9]+')
app=http://127.0.0.1:$gunicorn_port
wait_http gunicorn "$app/"

# ---- the app alone: its pages and the headers Django sets ----
echo "the Django app, straight from gunicorn on port $gunicorn_port:"
calls_before=$(upstream_calls)
fetch direct_hello "$app/playground/hello/"
expect_eq "direct: the slow page answers" 200 "$STATUS"
expect_at_least "direct: the slow page waits the API's delay (s)" "$delay" "$SECONDS_TAKEN"
expect_eq "direct: Django's Cache-Control on the slow page" "public, max-age=60" \
  "$(header direct_hello Cache-Control)"
expect_eq "direct: the slow page called the API once" 1 $(($(upstream_calls) - calls_before))
login direct_alice "$app" alice
fetch direct_account "$app/account/" -b "$work/direct_alice.jar"
expect_eq "direct: alice's account page answers" 200 "$STATUS"
expect_eq "direct: alice's account page is hers" alice "$(signed_in_as direct_account)"
expect_eq "direct: Django's Cache-Control on the account page" "private, max-age=60" \
  "$(header direct_account Cache-Control)"
expect_eq "direct: Django's Vary on the account page" Cookie "$(header direct_account Vary)"

((failures == 0)) || die "$failures check(s) of the app failed"

# ---- the proxy in front ----
proxy_port=$(free_port)
start proxy env -u CACHEKIT_CONFIG -u CACHEKIT_CACHE_URL \
  "$cachekit" proxy --listen "127.0.0.1:$proxy_port" --upstream "127.0.0.1:$gunicorn_port"
proxy=http://127.0.0.1:$proxy_port
wait_http proxy "$proxy/"
echo "cachekit proxy on port $proxy_port, in front of gunicorn:"

echo "(a) a miss, then a hit"
calls_before=$(upstream_calls)
fetch miss "$proxy/playground/hello/"
expect_eq "(a) the first request answers" 200 "$STATUS"
expect_match "(a) the first request is a miss: cachekit's Cache-Status member" 'fwd=' \
  "$(cachekit_status miss)"
expect_at_least "(a) the miss waits the API's delay (s)" "$delay" "$SECONDS_TAKEN"
fetch hit "$proxy/playground/hello/"
expect_eq "(a) the second request answers" 200 "$STATUS"
expect_match "(a) the second request is a hit: cachekit's Cache-Status member" \
  '^cachekit(;.*)?; *hit(;|$)' "$(cachekit_status hit)"
expect_below "(a) the hit is fast (s)" "$fast" "$SECONDS_TAKEN"
expect_match "(a) the hit has an Age" '^[0-9]+$' "$(header hit Age)"
expect_same_file "(a) the hit's body is the miss's body" "$work/miss.b" "$work/hit.b"
expect_eq "(a) the API was called once" 1 $(($(upstream_calls) - calls_before))

echo "(b) $burst concurrent first requests for another URL"
calls_before=$(upstream_calls)
burst_pids=()
for i in $(seq 1 "$burst"); do
  (
    fetch "burst$i" "$proxy/playground/hello/?burst=1"
    echo "$STATUS" >"$work/burst$i.status"
  ) &
  burst_pids+=($!)
done
for pid in "${burst_pids[@]}"; do wait "$pid" || true; done
statuses=() bodies_differ=0 tally=()
for i in $(seq 1 "$burst"); do
  statuses+=("$(cat "$work/burst$i.status" 2>/dev/null || echo none)")
  cmp -s "$work/burst1.b" "$work/burst$i.b" || bodies_differ=$((bodies_differ + 1))
  tally+=("$(cachekit_status "burst$i" | sed -E 's/; *ttl=[0-9]+//; s/; *fwd-status=[0-9]+//')")
done
expect_eq "(b) every request answers 200" "$(printf '200 %.0s' $(seq 1 "$burst"))" \
  "$(printf '%s ' "${statuses[@]}")"
expect_eq "(b) the bodies that differ from the first one's" 0 "$bodies_differ"
expect_eq "(b) the API was called once for $burst concurrent requests" 1 \
  $(($(upstream_calls) - calls_before))
echo "  (their Cache-Status: $(printf '%s\n' "${tally[@]}" | sort | uniq -c | sed -E 's/^ +//' | paste -sd '|' | sed 's/|/, /g'))"

echo "(c) the private page, for two users and for none"
login alice "$proxy" alice
login bob "$proxy" bob
for round in 1 2; do
  for user in alice bob; do
    fetch "account_${user}_$round" "$proxy/account/" -b "$work/$user.jar"
    expect_eq "(c) $user's account page, request $round, answers" 200 "$STATUS"
    expect_eq "(c) $user's account page, request $round, is $user's" "$user" \
      "$(signed_in_as "account_${user}_$round")"
    expect_match "(c) $user's account page, request $round, is not a hit" 'fwd=' \
      "$(cachekit_status "account_${user}_$round")"
  done
done
for user in alice bob; do
  first=$(rendered_at "account_${user}_1") second=$(rendered_at "account_${user}_2")
  if [[ -n $first && $first != "$second" ]]; then
    pass "(c) $user's second page was rendered anew ($first, then $second)"
  else
    fail "(c) $user's second page was rendered anew" "two different rendering times" "'$first' and '$second'"
  fi
done
fetch account_anonymous "$proxy/account/"
expect_eq "(c) the account page without a cookie shows nobody" "" "$(signed_in_as account_anonymous)"
if grep -q 'Not signed in' "$work/account_anonymous.b"; then pass "(c) ...and says so"; else
  fail "(c) the account page without a cookie says 'Not signed in'" "'Not signed in' in the body" \
    "$(tr '\n' ' ' <"$work/account_anonymous.b" | cut -c 1-200)"
fi
expect_match "(c) the account page without a cookie is not a hit" 'fwd=' \
  "$(cachekit_status account_anonymous)"

echo "(d) the headers Django set reach the client unchanged"
for field in Cache-Control Content-Type Vary X-Frame-Options X-Content-Type-Options Referrer-Policy; do
  expect_eq "(d) the slow page's $field, on the miss" "$(header direct_hello "$field")" "$(header miss "$field")"
  expect_eq "(d) the slow page's $field, on the hit" "$(header direct_hello "$field")" "$(header hit "$field")"
  expect_eq "(d) the account page's $field" "$(header direct_account "$field")" \
    "$(header account_alice_1 "$field")"
done

if ((failures > 0)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
