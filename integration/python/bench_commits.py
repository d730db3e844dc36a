"""Small ZODB commits as fast as one client can: prints transactions/s."""
import argparse
import time

import transaction
import ZODB
from ZEO.ClientStorage import ClientStorage

import zeo_ssl


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--storage", default="1")
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--max-latency", action="store_true",
                   help="also print the longest commit, in milliseconds")
    zeo_ssl.add_arguments(p)
    args = p.parse_args()
    host, _, port = args.addr.rpartition(":")
    db = ZODB.DB(ClientStorage((host, int(port)), storage=args.storage, wait_timeout=30,
                                **zeo_ssl.options(args)))
    tm = transaction.TransactionManager()
    conn = db.open(tm)
    root = conn.root()
    tm.begin()
    root["n"] = 0
    tm.commit()
    n = 0
    start = time.perf_counter()
    deadline = start + args.seconds
    longest = 0.0
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        tm.begin()
        root["n"] += 1
        tm.commit()
        longest = max(longest, time.perf_counter() - t0)
        n += 1
    elapsed = time.perf_counter() - start
    conn.close()
    db.close()
    if args.max_latency:
        print("%.1f %.1f" % (n / elapsed, longest * 1000))
    else:
        print("%.1f" % (n / elapsed))


if __name__ == "__main__":
    main()
