#!/usr/bin/env python3
"""The tables of bench/peers/run.sh, from its raw results file.

  summary.py RESULTS

Hits: per peer and body size, the median req/s (with the interquartile range of the rounds),
the median of wrk's p99, the median server CPU per hit, the origin calls during the runs (0 when
every request was a hit) and the ratios to nginx and to Varnish: req/s over req/s (higher is
better) and CPU per hit over CPU per hit (lower is better), each a ratio of the medians.
Then the open-loop latency and the stampede.
"""

import collections
import statistics
import sys

PEERS = ["nginx", "varnish", "cachekit-locmem", "cachekit-redis"]
SIZE_NAMES = {1024: "1 KB", 102400: "100 KB"}


def quartiles(values):
    values = sorted(values)
    n = len(values)
    return statistics.median(values), values[n // 4], values[min(n - 1, (3 * n) // 4)]


def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"


def main():
    closed = collections.defaultdict(lambda: collections.defaultdict(list))
    open_loop = collections.defaultdict(lambda: collections.defaultdict(list))
    stampede, unavailable = [], {}
    for line in open(sys.argv[1]):
        f = line.split()
        if not f:
            continue
        if f[0] == "closed":
            row = closed[(f[2], int(f[3]))]
            for name, value in zip(["rps", "p99", "cpu", "proxy_cpu", "calls", "errors"], f[4:10]):
                row[name].append(float(value))
        elif f[0] == "open":
            row = open_loop[f[2]]
            for name, value in zip(["target", "achieved", "p50", "p99", "p999", "max", "wrk_p99",
                                    "cpu", "errors"], f[4:13]):
                row[name].append(float(value) if value != "nan" else float("nan"))
        elif f[0] == "stampede":
            stampede.append(f[2:])
        elif f[0] == "unavailable":
            unavailable[f[2]] = " ".join(f[3:])

    def med(peer, size, name):
        values = closed.get((peer, size), {}).get(name)
        return statistics.median(values) if values else None

    print("\n### Cache hits, closed loop (wrk -t1 -c50, keep-alive; proxy on CPU 0, wrk on CPU 1)\n")
    print("| peer | body | req/s median (IQR) | p99 ms | CPU µs/hit | vs nginx: req/s, CPU | "
          "vs Varnish: req/s, CPU | origin calls | runs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, size_name in SIZE_NAMES.items():
        for peer in PEERS:
            row = closed.get((peer, size))
            if not row:
                reason = unavailable.get(peer, "no runs")
                print(f"| {peer} | {size_name} | not available ({reason}) | | | | | | |")
                continue
            rps, q1, q3 = quartiles(row["rps"])
            cpu = statistics.median(row["cpu"])
            cells = []
            for other in ("nginx", "varnish"):
                other_rps, other_cpu = med(other, size, "rps"), med(other, size, "cpu")
                if other_rps is None:
                    cells.append("n/a")
                else:
                    cells.append(f"{ratio(rps, other_rps)}×, {ratio(cpu, other_cpu)}×")
            cpu_text = f"{cpu:.2f}"
            if peer == "cachekit-redis":  # the proxy's own share next to proxy + Redis
                cpu_text += f" ({statistics.median(row['proxy_cpu']):.2f} proxy alone)"
            errors = sum(row["errors"])
            print(f"| {peer} | {size_name} | {rps:,.0f} ({q1:,.0f}–{q3:,.0f}) | "
                  f"{statistics.median(row['p99']) / 1000:.2f} | {cpu_text} | {cells[0]} | "
                  f"{cells[1]} | {sum(row['calls']):.0f}{f', {errors:.0f} errors' if errors else ''}"
                  f" | {len(row['rps'])} |")

    if open_loop:
        target = next(iter(open_loop.values()))["target"][0]
        print(f"\n### Open loop: 1 KB at a constant {target:,.0f} req/s (half of nginx's median "
              "1 KB rate), latency from each request's scheduled send\n")
        print("| peer | achieved req/s | p50 ms | p99 ms median (range) | p99.9 ms | "
              "wrk's p99 from the actual send, ms | CPU µs/req | errors | runs |")
        print("|---|---|---|---|---|---|---|---|---|")
        for peer in PEERS:
            row = open_loop.get(peer)
            if not row:
                reason = unavailable.get(peer, "no runs")
                print(f"| {peer} | not available ({reason}) | | | | | | | |")
                continue
            m = {k: statistics.median(v) for k, v in row.items()}
            print(f"| {peer} | {m['achieved']:,.0f} | {m['p50'] / 1000:.3f} | "
                  f"{m['p99'] / 1000:.3f} ({min(row['p99']) / 1000:.3f}–{max(row['p99']) / 1000:.3f})"
                  f" | {m['p999'] / 1000:.3f} | {m['wrk_p99'] / 1000:.3f} | {m['cpu']:.2f} | "
                  f"{sum(row['errors']):.0f} | {len(row['p99'])} |")

    if stampede or unavailable:
        print("\n### Cold-key stampede: concurrent requests for one fresh URL, origin delay 0.5 s\n")
        print("| peer | requests | origin calls | 2xx | first response s | last response s | "
              "cache header values |")
        print("|---|---|---|---|---|---|---|")
        seen = set()
        for peer, variant, calls, requests, ok, first, last, *cache in stampede:
            seen.add(peer)
            print(f"| {variant} | {requests} | {calls} | {ok} | {first} | {last} | "
                  f"{' '.join(cache).replace('_', ' ').replace(',', ', ')} |")
        for peer in PEERS:
            if peer not in seen:
                print(f"| {peer} | not available ({unavailable.get(peer, 'no run')}) | | | | | |")


if __name__ == "__main__":
    main()
