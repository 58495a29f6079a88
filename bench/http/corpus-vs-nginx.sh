#!/usr/bin/env bash
# Replays the robustness corpus (tests/e2e/request_corpus.json) against nginx and writes the
# rows where nginx answers differently from cachekit into docs/reliability.md (between the
# "corpus-vs-nginx" markers). cachekit's column is the corpus's expectation, which
# request_corpus_e2e_test checks against a real cachekit server in `make test`.
#
#   bench/http/corpus-vs-nginx.sh
#
# nginx runs on a free loopback port from a temporary prefix: `return 200 "ok"` for every
# request, client_header_timeout 1s (the corpus's slow-head row; cachekit's test uses
# header_timeout = 1 s), everything else at nginx's defaults. Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v nginx >/dev/null || { echo "needs nginx" >&2; exit 1; }
scratch=$(mktemp -d /tmp/cachekit-corpus-nginx.XXXXXX)
cleanup() {
  [ -f "$scratch/nginx.pid" ] && kill "$(cat "$scratch/nginx.pid")" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$scratch/nginx.conf" <<CONF
worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_header_timeout 1s;
  client_body_temp_path client_body_temp;
  proxy_temp_path proxy_temp;
  fastcgi_temp_path fastcgi_temp;
  uwsgi_temp_path uwsgi_temp;
  scgi_temp_path scgi_temp;
  server {
    listen 127.0.0.1:$port;
    location / { return 200 "ok"; }
  }
}
CONF
nginx -p "$scratch" -c "$scratch/nginx.conf"
for _ in $(seq 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$port))" 2>/dev/null && break
  sleep 0.1
done
timeout 600 python3 bench/http/corpus_replay.py "$port" >"$scratch/nginx.jsonl"
python3 - "$scratch/nginx.jsonl" <<'PY'
import json, re, subprocess, sys
expected = {r["name"]: r for r in json.load(open("tests/e2e/request_corpus.json"))}
version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
fate = lambda close: "closes" if close else "keeps"
rows, same = [], 0
for line in open(sys.argv[1]):
    got = json.loads(line)
    want = expected[got["name"]]
    if got["status"] == want["status"] and got["close"] == want["close"]:
        same += 1
        continue
    show = lambda r: ", ".join(str(s) if s else "none" for s in r["status"]) + ", " + fate(r["close"])
    rows.append(f"| {got['name']} | {show(want)} | {show(got)} |")
table = "\n".join([
    f"<!-- corpus-vs-nginx: written by bench/http/corpus-vs-nginx.sh; {version} -->",
    f"{same} of {len(expected)} rows get the same statuses and connection fate from {version.split(': ')[-1]}"
    f" (`return 200`, default limits, client_header_timeout 1s); the others:",
    "",
    "| row | cachekit | nginx |",
    "|---|---|---|",
    *rows,
    "<!-- /corpus-vs-nginx -->",
])
print(table)
doc = "docs/reliability.md"
text = open(doc).read()
pattern = re.compile(r"<!-- corpus-vs-nginx.*?<!-- /corpus-vs-nginx -->", re.S)
text = pattern.sub(lambda _: table, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + table + "\n"
open(doc, "w").write(text)
PY
