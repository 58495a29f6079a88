#!/usr/bin/env python3
"""100 hostile connections against a running cachekit server, with a well-behaved client beside.

    bench/http/hostile.py SERVER_BIN [CONNECTIONS] [SECONDS]

Starts SERVER_BIN (bench/http/page_cache_server: `SERVER_BIN 0` prints "listening on PORT"),
then opens CONNECTIONS connections split evenly between three attacks, each writing as fast as
the server reads: an endless head (one header value that never ends), an endless trailer after
a chunked body, and an endless chunk-size line. Beside them one client sends cached GETs on a
keep-alive connection for SECONDS. Prints the server's RSS before and at its peak, how long each
hostile connection took to be closed (and with which status), and the GETs' success count.
"""
import os
import socket
import subprocess
import sys
import threading
import time

server_bin = sys.argv[1]
connections = int(sys.argv[2]) if len(sys.argv) > 2 else 100
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0

HEAD = "POST /page.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
ATTACKS = {
    "endless head": (HEAD + "X-Endless: ", b"a" * 65536),
    "endless trailer": (HEAD + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
                        b"X-T: aaaaaaaaaaaaaaaaaaaaaa\r\n" * 2048),
    "endless chunk line": (HEAD + "Transfer-Encoding: chunked\r\n\r\n5;ext=", b"e" * 65536),
}


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def attack(port, name, results):
    prefix, filler = ATTACKS[name]
    s = socket.create_connection(("127.0.0.1", port))
    started = time.monotonic()
    status = "closed without a response"
    try:
        s.sendall(prefix.encode())
        s.settimeout(0.0)
        while time.monotonic() - started < 60:
            try:
                data = s.recv(4096)
                if data:
                    status = data.split(b"\r\n", 1)[0].decode(errors="replace")
                break
            except BlockingIOError:
                pass
            s.settimeout(1.0)
            s.sendall(filler)
            s.settimeout(0.0)
    except OSError:
        pass
    results.append((name, time.monotonic() - started, status))
    s.close()


def good_client(port, stop, counts):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    request = b"GET /page.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    while not stop.is_set():
        try:
            s.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                more = s.recv(65536)
                if not more:  # the server closes keep-alive after max_requests_per_connection
                    raise ConnectionResetError
                data += more
            head, _, body = data.partition(b"\r\n\r\n")
            length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
            while len(body) < length:
                body += s.recv(65536)
            counts["ok" if head.startswith(b"HTTP/1.1 200") else "bad"] += 1
        except ConnectionResetError:
            s = socket.create_connection(("127.0.0.1", port))
            s.settimeout(5)
        except OSError:
            counts["bad"] += 1
            s = socket.create_connection(("127.0.0.1", port))
            s.settimeout(5)


proc = subprocess.Popen([server_bin, "0"], stdout=subprocess.PIPE, text=True)
try:
    port = int(proc.stdout.readline().split()[-1])
    socket.create_connection(("127.0.0.1", port)).sendall(b"GET /page.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    time.sleep(0.2)
    base = rss_kb(proc.pid)
    stop, counts, results = threading.Event(), {"ok": 0, "bad": 0}, []
    good = threading.Thread(target=good_client, args=(port, stop, counts))
    good.start()
    names = list(ATTACKS)
    attackers = [threading.Thread(target=attack, args=(port, names[i % 3], results)) for i in range(connections)]
    for t in attackers:
        t.start()
    peak = base
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak = max(peak, rss_kb(proc.pid))
        time.sleep(0.05)
    for t in attackers:
        t.join()
    stop.set()
    good.join()
    print(f"server RSS: {base / 1024:.1f} MB before, {peak / 1024:.1f} MB peak (+{(peak - base) / 1024:.1f} MB)")
    for name in names:
        mine = [r for r in results if r[0] == name]
        worst = max(r[1] for r in mine)
        statuses = sorted({r[2] for r in mine})
        print(f"{name}: {len(mine)} connections, all closed, slowest after {worst:.2f} s; {statuses}")
    print(f"cached GETs beside them: {counts['ok']} x 200, {counts['bad']} failed")
finally:
    proc.terminate()
    proc.wait()
