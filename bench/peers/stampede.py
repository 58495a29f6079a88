#!/usr/bin/env python3
"""N concurrent GETs of one URL released together: the cold-key stampede of bench/peers/run.sh.

  stampede.py PORT PATH [N] [CACHE_HEADER]

Opens N connections to 127.0.0.1:PORT first, then writes the N requests in one go (a barrier: no
request leaves before every connection is up) and reads every response to its end (each request
says Connection: close). Prints one line of key=value pairs: requests, ok (2xx), first_s and
last_s (seconds from the barrier to the first and the last complete response) and `cache`, the
values of CACHE_HEADER counted (e.g. MISS:1,HIT:99; spaces become _). The origin's call count
is read by the caller, before and after.
"""

import asyncio
import collections
import sys
import time


async def one_request(reader, writer, request, started, header):
    writer.write(request)
    data = await reader.read()  # to EOF: Connection: close
    writer.close()
    elapsed = time.monotonic() - started
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    try:
        status = int(head[0].split()[1])
    except (IndexError, ValueError):
        status = 0
    value = "-"
    for line in head[1:]:
        name, _, rest = line.partition(":")
        if name.strip().lower() == header.lower():
            value = rest.strip().replace(" ", "_").replace(",", ";")
    return status, value, elapsed


async def stampede(port, path, n, header):
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(n)]
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               "Connection: close\r\n\r\n").encode()
    started = time.monotonic()
    return await asyncio.gather(*(one_request(r, w, request, started, header)
                                  for r, w in connections))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    port, path = int(sys.argv[1]), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    header = sys.argv[4] if len(sys.argv) > 4 else "Cache-Status"
    results = asyncio.run(asyncio.wait_for(stampede(port, path, n, header), timeout=60))
    ok = sum(1 for status, _, _ in results if 200 <= status < 300)
    times = sorted(elapsed for _, _, elapsed in results)
    cache = collections.Counter(value for _, value, _ in results)
    print(f"requests={n} ok={ok} first_s={times[0]:.3f} last_s={times[-1]:.3f} cache="
          + ",".join(f"{value}:{count}" for value, count in cache.most_common()))


if __name__ == "__main__":
    main()
