"""A real ZODB client for tidstorage's tests and quickstart.

Opens one ZODB.DB per --db over ZEO ClientStorage, all in one multi-database
(as Zope mount points do), and runs a command. Output is JSON on stdout, one
object per line; TIDs are 16-hex strings.

  --db NAME=HOST:PORT/STORAGE   (repeatable; the first is the root database)

Commands:
  last                      {"NAME": tid-hex, ...} of each storage (lastTransaction)
  commit --count N --touch a,b [--desc D] [--user U]
                            N transactions, each writing root['counter'] in the
                            touched databases; one line per transaction with the
                            TID committed on each touched database.
  read                      {"NAME": {"counter": int|null}} at the current state.
"""
import argparse
import json
import sys

import transaction
import ZODB
from ZEO.ClientStorage import ClientStorage


def parse_db(spec):
    name, _, rest = spec.partition("=")
    addr, _, storage = rest.partition("/")
    if addr.startswith("unix:"):
        address = addr[len("unix:"):]
    else:
        host, _, port = addr.rpartition(":")
        address = (host, int(port))
    return name, address, storage or "1"


def open_dbs(specs, read_only=False, wait_timeout=30):
    databases = {}
    dbs = []
    for spec in specs:
        name, address, storage = parse_db(spec)
        cs = ClientStorage(address, storage=storage, read_only=read_only,
                           wait_timeout=wait_timeout)
        dbs.append(ZODB.DB(cs, databases=databases, database_name=name))
    return dbs


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--db", action="append", required=True)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("last")
    sub.add_parser("read")
    c = sub.add_parser("commit")
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--touch", default="")
    c.add_argument("--desc", default="")
    c.add_argument("--user", default="")
    args = p.parse_args()

    dbs = open_dbs(args.db)
    names = [db.database_name for db in dbs]
    try:
        if args.cmd == "last":
            emit({db.database_name: db.storage.lastTransaction().hex() for db in dbs})
        elif args.cmd == "read":
            tm = transaction.TransactionManager()
            conn = dbs[0].open(tm)
            out = {}
            for name in names:
                root = conn.get_connection(name).root()
                out[name] = {"counter": root.get("counter")}
            emit(out)
            conn.close()
        elif args.cmd == "commit":
            touch = [t for t in args.touch.split(",") if t] or names
            tm = transaction.TransactionManager()
            conn = dbs[0].open(tm)
            for i in range(args.count):
                txn = tm.begin()
                if args.desc:
                    txn.note(args.desc)
                if args.user:
                    txn.setUser(args.user)
                roots = {n: conn.get_connection(n).root() for n in touch}
                for n, root in roots.items():
                    root["counter"] = root.get("counter", 0) + 1
                tm.commit()
                # After commit, each root's serial is the TID committed there.
                emit({n: roots[n]._p_serial.hex() for n in touch})
            conn.close()
    finally:
        for db in dbs:
            db.close()


if __name__ == "__main__":
    main()
