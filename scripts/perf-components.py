#!/usr/bin/env python3
"""Splits a `perf record -g` profile of tidstorage into components.

Usage: perf script -i FILE.data | scripts/perf-components.py

Each sample is charged to one component, from the first rule (in the order
below) that matches a frame of its call chain: the journal before the
tracker that calls it, decoding before the relay that calls it, and so on.
Prints the share of the samples of each component (kernel time included:
a system call is charged to whoever made it).
"""
import collections
import re
import sys

RULES = [
    ("journal (tracker/journal writes)", r"tracker/journal\.|tracker\.\(\*Service\)\.record|journalErr"),
    ("status file", r"tracker/statusfile\."),
    ("metrics and admin endpoint", r"cmd/admin\.|prometheus|net/http\."),
    ("history watcher (reader, decode, delivery)", r"tracker/history\.|zrpc\.\(\*Client\)|daemon\.\(\*Daemon\)\.historySink"),
    ("decode (zrpc)", r"zrpc\.Decode|zrpc\.Parse|zrpc\.decode|ogórek|og-rek|msgpack"),
    ("tracker (Service, Machine)", r"tracker\.\(\*Service\)|tracker\.\(\*Machine\)|tracker\.AppendInput"),
    ("relay (pumps, peek, socket I/O)", r"zeoproxy\."),
    ("fleet link (gRPC reports, acknowledgements)", r"google\.golang\.org/grpc|golang\.org/x/net/http2|tidstorage/fleet\."),
    ("Go runtime: sysmon", r"runtime\.sysmon"),
    ("Go runtime: GC", r"runtime\.gcBgMarkWorker|runtime\.gcDrain|runtime\.bgsweep|runtime\.bgscavenge|runtime\.gcStart"),
    ("Go runtime: scheduler (idle, park, wake)", r"runtime\.(schedule|findRunnable|park_m|mcall|mstart|stopm|startm|wakep|netpoll)"),
]


def main():
    counts = collections.Counter()
    total = 0
    stack = []
    rules = [(name, re.compile(rx)) for name, rx in RULES]

    def flush():
        nonlocal total
        if not stack:
            return
        total += 1
        text = "\n".join(stack)
        for name, rx in rules:
            if rx.search(text):
                counts[name] += 1
                break
        else:
            counts["other"] += 1
        stack.clear()

    for line in sys.stdin:
        if not line.strip():
            flush()
            continue
        if line[0] in " \t":
            parts = line.split(None, 1)
            if len(parts) == 2:
                stack.append(parts[1].strip())
        else:
            flush()
    flush()
    if not total:
        sys.exit("no samples")
    for name, _ in RULES + [("other", None)]:
        print("%6.1f %%  %s" % (100.0 * counts[name] / total, name))
    print("%d samples" % total)


if __name__ == "__main__":
    main()
