#!/usr/bin/env bash
# The SQL backend's peer comparisons (BENCHMARKS.md, "Database backends"), interleaved, on a private PostgreSQL
# cluster pinned to CPU 0 with every client pinned to CPU 1:
#   PostgreSQL: `pgbench -S -M prepared -c 8 -j 2` vs `sql_bench postgres` (8 threads of
#               Cache::get), both on 100 000 rows of the same server;
#   SQLite:     a prepared SELECT loop through the C API vs Cache::get, one thread, same file.
#
#   bench/run-sql-bench.sh BUILD_DIR [RUNS] [SECONDS]
set -euo pipefail
build=${1:?build directory with bench/sql_bench (Release)}
runs=${2:-3} seconds=${3:-10}
bench="$build/bench/sql_bench"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d /tmp/cachekit-sql-bench.XXXXXX)
chmod 755 "$dir"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="postgresql://postgres@127.0.0.1:$port/postgres"
as_pg() { su postgres -s /bin/sh -c "$*"; }

cleanup() {
  as_pg "$pgbin/pg_ctl -D $dir/data -m fast -w stop" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

mkdir "$dir/data" && chown postgres:postgres "$dir/data" && chmod 700 "$dir/data"
as_pg "$pgbin/initdb -D $dir/data -U postgres --auth=trust -E UTF8 --no-locale --no-sync" >/dev/null
as_pg "taskset -c 0 $pgbin/pg_ctl -D $dir/data -l $dir/data/server.log -w -o \"-p $port \
  -c listen_addresses=127.0.0.1 -k $dir/data -c fsync=off -c synchronous_commit=off \
  -c full_page_writes=off\" start" >/dev/null

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
pgbench -i -s 1 -q "$url" >/dev/null 2>&1
"$bench" fill-postgres "$url" 100000 84
"$bench" fill-sqlite "$dir/cache.db" 100000 84

# Client CPU seconds (user+sys) next to each PostgreSQL figure: the server is the same for both.
for run in $(seq 1 "$runs"); do
  out=$( { /usr/bin/time -f "client_cpu_seconds=%U+%S" taskset -c 1 \
           pgbench -S -M prepared -c 8 -j 2 -T "$seconds" -n "$url"; } 2>&1)
  echo "run $run pgbench-S-prepared ops_per_sec=$(awk '/^tps/ {print int($3)}' <<<"$out")" \
       "$(grep -o 'client_cpu_seconds=.*' <<<"$out")"
  out=$( { /usr/bin/time -f "client_cpu_seconds=%U+%S" taskset -c 1 \
           "$bench" postgres "$url" "$seconds" 100000 8; } 2>&1)
  echo "run $run $(grep postgres-cachekit <<<"$out") $(grep -o 'client_cpu_seconds=.*' <<<"$out")"
  echo "run $run $(taskset -c 1 "$bench" sqlite-raw "$dir/cache.db" "$seconds" 100000)"
  echo "run $run $(taskset -c 1 "$bench" sqlite "$dir/cache.db" "$seconds" 100000)"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
