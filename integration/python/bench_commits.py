"""Small ZODB commits as fast as one client can: prints transactions/s.

--storage takes a comma-separated list: every transaction then changes one
object in each of those storages (a two-phase commit over all of them).
--key gives concurrent clients objects of their own (no conflicts); without
it every transaction changes the root.
"""
import argparse
import sys
import time

import transaction
import ZODB
from persistent.mapping import PersistentMapping
from ZEO.ClientStorage import ClientStorage
from ZODB.POSException import ConflictError

import zeo_ssl


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--storage", default="1",
                   help="storage name, or several separated by commas")
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--start-at", type=float, default=0,
                   help="connect first, then wait until this time (seconds since the epoch) to start "
                        "committing, so that concurrent clients are measured over the same window")
    p.add_argument("--key", default="",
                   help="change root[KEY]['n'] (created if needed) instead of root['n']")
    p.add_argument("--max-latency", action="store_true",
                   help="also print the longest commit, in milliseconds")
    zeo_ssl.add_arguments(p)
    args = p.parse_args()
    host, _, port = args.addr.rpartition(":")
    tm = transaction.TransactionManager()
    dbs, roots = [], []
    for name in args.storage.split(","):
        db = ZODB.DB(ClientStorage((host, int(port)), storage=name, wait_timeout=30,
                                   **zeo_ssl.options(args)))
        dbs.append(db)
        roots.append(db.open(tm).root())
    if args.key:
        for _ in range(50):  # concurrent clients create their objects at once
            try:
                tm.begin()
                for root in roots:
                    if args.key not in root:
                        root[args.key] = PersistentMapping(n=0)
                tm.commit()
                break
            except ConflictError:
                tm.abort()
                time.sleep(0.05)
        else:
            raise SystemExit("bench_commits: could not create root[%r]" % args.key)
        targets = [root[args.key] for root in roots]
    else:
        tm.begin()
        for root in roots:
            root["n"] = 0
        tm.commit()
        targets = roots
    if args.start_at:
        delay = args.start_at - time.time()
        if delay < 0:
            sys.stderr.write("bench_commits: ready %.2f s after --start-at\n" % -delay)
        else:
            time.sleep(delay)
    n = 0
    start = time.perf_counter()
    deadline = start + args.seconds
    longest = 0.0
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        tm.begin()
        for obj in targets:
            obj["n"] += 1
        tm.commit()
        longest = max(longest, time.perf_counter() - t0)
        n += 1
    elapsed = time.perf_counter() - start
    for db in dbs:
        db.close()
    if args.max_latency:
        print("%.1f %.1f" % (n / elapsed, longest * 1000))
    else:
        print("%.1f" % (n / elapsed))


if __name__ == "__main__":
    main()
