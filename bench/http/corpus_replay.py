#!/usr/bin/env python3
"""Replays tests/e2e/request_corpus.json against a server and prints what it answered.

    bench/http/corpus_replay.py PORT [CORPUS]  → one JSON object per row on stdout:
    {"name", "status": [..] (0 = no response), "close": bool}

Same protocol as tests/e2e/request_corpus_e2e_test.cc: send the row's bytes (a slow row: send
its partial head and wait), read as many responses as the row expects, then either see the
connection closed within 3 s or send one more GET that must be answered.
"""
import json
import socket
import sys

port = int(sys.argv[1])
corpus = sys.argv[2] if len(sys.argv) > 2 else "tests/e2e/request_corpus.json"


def assemble(pieces):
    return "".join(p if isinstance(p, str) else p["repeat"] * p["times"] for p in pieces)


def read_response(s, buf):
    try:
        return read_response_or_raise(s, buf)
    except OSError:  # a timeout or a reset: no (complete) response
        return 0


def read_response_or_raise(s, buf):
    while b"\r\n\r\n" not in buf[0]:
        data = s.recv(65536)
        if not data:
            return 0
        buf[0] += data
    head, _, rest = buf[0].partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(rest) < length:
        data = s.recv(65536)
        if not data:
            break
        rest += data
    buf[0] = rest[length:]
    return status


def closes(s):
    s.settimeout(3)
    try:
        while True:
            if not s.recv(65536):
                return True
    except socket.timeout:
        return False
    except OSError:
        return True


for row in json.load(open(corpus)):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    data = row["slow"] if "slow" in row else assemble(row["send"])
    statuses, buf = [], [b""]
    try:
        s.sendall(data.encode("latin-1"))
        for _ in row["status"]:
            statuses.append(read_response(s, buf))
            if statuses[-1] == 0:
                break
    except OSError:
        statuses.append(0)
    closed = closes(s)
    if not closed:
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        except OSError:
            pass
        closed = read_response(s, [b""]) != 200
    s.close()
    print(json.dumps({"name": row["name"], "status": statuses, "close": closed}))
