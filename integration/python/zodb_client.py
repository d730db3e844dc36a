"""A real ZODB client for tidstorage's tests and quickstart.

Opens one ZODB.DB per --db over ZEO ClientStorage, all in one multi-database
(as Zope mount points do), and runs a command. Output is JSON on stdout, one
object per line; TIDs are 16-hex strings.

  --db NAME=HOST:PORT/STORAGE   (repeatable; the first is the root database)
  --label L                     ZEO client_label of every storage (optional)
  --wait-timeout S              how long a call waits for a lost connection (30)
  --ssl-ca FILE [--ssl-cert FILE --ssl-key FILE] [--ssl-server-hostname NAME]
                                TLS to every server, as zope.conf's <ssl> (zeo_ssl.py)

Commands:
  last                      {"NAME": tid-hex, ...} of each storage (lastTransaction)
  commit --count N --touch a,b [--desc D] [--user U] [--key K]
                            N transactions, each writing root[K] (default 'counter') in the
                            touched databases; one line per transaction with the
                            TID committed on each touched database.
  read                      {"NAME": {"counter": int|null}} at the current state.
  read-at --at NAME=TID[,NAME=TID] [--at ...]
                            {"NAME": {"counter": int|null}} as of each TID (inclusive).
  paired --count N --seconds S [--touch a,b] [--key K]
                            up to N transactions (or S seconds), each setting
                            root[K] (default 'counter') to the same new value in every touched
                            database; conflicts are retried after a jittered backoff.
                            One line per commit; conflict counts on stderr.
                            --classic HOST:PORT --ids a=ID,b=ID also reports each
                            transaction over the classic protocol, as a patched Zope.
                            --between-ms M: a resource manager ordered between the
                            touched databases sleeps M ms in its tpc_finish, so that
                            each transaction stands committed on the first and voted
                            on the last for that long (a slow client).
                            --unique-desc makes each attempt's description unique
                            ("<desc> <pid>-<n>"), so that an oracle can match a
                            transaction's commits across storages.
  hold --seconds S [--vote]  begins a two-phase commit on the first database and
                            keeps it open for S seconds (then aborts it); with
                            --vote it votes first (the server holds the commit
                            lock: the transaction is in its commit).
  crash-between --first a --then b
                            commits a transaction T1 writing 'first' and 'then'
                            with a resource manager ordered between them whose
                            tpc_finish kills this process: T1 commits on 'first'
                            only. Prints the line {"pid": ...} before dying.
                            With --block-until FILE the resource manager does not
                            kill: it prints {"between": "1"} and waits (at most
                            --block-seconds) for FILE to exist, then the commit
                            goes on to 'then' (the test kills tidstorage or this
                            process meanwhile).
  history [--key K]         {"NAME": [[tid-hex, value], ...]}: root[K] (default
                            'counter') after each transaction that wrote the root
                            object, oldest first.
"""
import os
import time
import argparse
import faulthandler
import json
import random
import signal
import sys

import transaction
import ZODB
from ZEO.ClientStorage import ClientStorage

import zeo_ssl

# ClientStorage keyword arguments for TLS (--ssl-*), set by main.
SSL = {}


def parse_db(spec):
    name, _, rest = spec.partition("=")
    addr, _, storage = rest.rpartition("/")
    if addr.startswith("unix:"):
        address = addr[len("unix:"):]
    else:
        host, _, port = addr.rpartition(":")
        address = (host, int(port))
    return name, address, storage or "1"


def open_dbs(specs, read_only=False, wait_timeout=30, label=None, blob_cache=False):
    databases = {}
    dbs = []
    for spec in specs:
        name, address, storage = parse_db(spec)
        kw = {}
        if blob_cache:
            # A private blob cache: the client can store and load blobs.
            import tempfile
            kw["blob_dir"] = tempfile.mkdtemp(prefix="zodb-client-blobs-")
        cs = ClientStorage(address, storage=storage, read_only=read_only,
                           wait_timeout=wait_timeout, client_label=label, **SSL, **kw)
        dbs.append(ZODB.DB(cs, databases=databases, database_name=name))
    return dbs


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def main():
    # A test that sees this client stall asks where it is (SIGUSR2).
    faulthandler.register(signal.SIGUSR2, file=sys.stderr, all_threads=True)
    p = argparse.ArgumentParser()
    p.add_argument("--db", action="append", required=True)
    p.add_argument("--label", default=None, help="ZEO client_label of every storage")
    p.add_argument("--wait-timeout", type=float, default=30,
                   help="how long a call waits for a lost server connection to come back")
    zeo_ssl.add_arguments(p)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("last")
    sub.add_parser("read")
    c = sub.add_parser("commit")
    c.add_argument("--count", type=int, default=1)
    c.add_argument("--touch", default="")
    c.add_argument("--desc", default="")
    c.add_argument("--user", default="")
    c.add_argument("--key", default="counter")
    ra = sub.add_parser("read-at")
    ra.add_argument("--at", required=True, action="append")
    pa = sub.add_parser("paired")
    pa.add_argument("--count", type=int, default=100)
    pa.add_argument("--seconds", type=float, default=30)
    pa.add_argument("--touch", default="")
    pa.add_argument("--desc", default="paired")
    pa.add_argument("--key", default="counter")
    pa.add_argument("--blob", action="store_true",
                    help="also store root['blob'], a new ZODB Blob holding the value, in the first touched database")
    pa.add_argument("--classic", default=None,
                    help="HOST:PORT: report each transaction as a patched Zope does (BEGIN before the "
                         "two-phase commit, COMMIT with the TIDs after it, ABORT on a conflict)")
    pa.add_argument("--unique-desc", action="store_true")
    pa.add_argument("--between-ms", type=float, default=0)
    pa.add_argument("--ids", default="",
                    help="NAME=STORAGE_ID,...: the classic storage id of each touched database")
    ho = sub.add_parser("hold")
    ho.add_argument("--seconds", type=float, default=60)
    ho.add_argument("--vote", action="store_true")
    cb = sub.add_parser("crash-between")
    cb.add_argument("--first", required=True)
    cb.add_argument("--then", required=True)
    cb.add_argument("--desc", default="T1")
    cb.add_argument("--block-until", default=None)
    cb.add_argument("--block-seconds", type=float, default=120)
    pk = sub.add_parser("pack")
    pk.add_argument("--touch", default="", help="the databases to pack (default: all)")
    hi = sub.add_parser("history")
    hi.add_argument("--key", default="counter")
    args = p.parse_args()
    SSL.update(zeo_ssl.options(args))
    if args.cmd == "read-at":
        return read_at(args)
    if args.cmd == "history":
        return root_history(args)

    dbs = open_dbs(args.db, label=args.label, wait_timeout=args.wait_timeout,
                   blob_cache=getattr(args, "blob", False))
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
            from ZODB.POSException import ConflictError
            for i in range(args.count):
                for attempt in range(100):  # conflicts are retried, as Zope does
                    txn = tm.begin()
                    if args.desc:
                        txn.note(args.desc)
                    if args.user:
                        txn.setUser(args.user)
                    roots = {n: conn.get_connection(n).root() for n in touch}
                    for n, root in roots.items():
                        root[args.key] = root.get(args.key, 0) + 1
                    try:
                        tm.commit()
                        break
                    except ConflictError:
                        tm.abort()
                else:
                    raise SystemExit("commit: too many conflicts")
                # After commit, each root's serial is the TID committed there.
                emit({n: roots[n]._p_serial.hex() for n in touch})
            conn.close()
        elif args.cmd == "paired":
            paired(dbs, names, args)
        elif args.cmd == "pack":
            touch = [t for t in args.touch.split(",") if t] or names
            for db in dbs:
                if db.database_name in touch:
                    db.pack()
            emit({"packed": touch})
        elif args.cmd == "crash-between":
            crash_between(dbs, args)
        elif args.cmd == "hold":
            hold(dbs, args)
    finally:
        for db in dbs:
            db.close()


def paired(dbs, names, args):
    from ZODB.POSException import ConflictError
    from ZEO.Exceptions import ClientDisconnected
    from transaction.interfaces import TransientError
    touch = [t for t in args.touch.split(",") if t] or names
    tm = transaction.TransactionManager()
    conn = dbs[0].open(tm)
    reporter, ids = None, {}
    if args.classic:
        # A patched Zope (Products.TIDStorage): its transaction hooks tell
        # the daemon over the classic protocol (classic_client.py's Conn).
        from classic_client import Conn
        host, _, port = args.classic.rpartition(":")
        reporter = Conn(host, int(port))
        ids = dict(kv.split("=", 1) for kv in args.ids.split(",") if kv)
    between = None
    if args.between_ms:
        keys = sorted(conn.get_connection(n).sortKey() for n in touch)
        between = keys[0] + "\U0010ffff"  # right after the first database
        assert keys[0] < between < keys[-1], keys
    deadline = time.time() + args.seconds
    done = conflicts = streak = attempts = 0
    reported = time.time()
    while done < args.count and time.time() < deadline:
        if conflicts and time.time() - reported >= 1:
            # A test that sees no commit for a while can tell a conflict
            # livelock from a hang.
            sys.stderr.write("%d conflicts, %d commits\n" % (conflicts, done))
            sys.stderr.flush()
            reported = time.time()
        txid = None
        try:
            txn = tm.begin()
            attempts += 1
            txn.note("%s %d-%d" % (args.desc, os.getpid(), attempts) if args.unique_desc else args.desc)
            roots = {n: conn.get_connection(n).root() for n in touch}
            value = max(r.get(args.key, 0) for r in roots.values()) + 1
            for r in roots.values():
                r[args.key] = value
            if args.blob:
                from ZODB.blob import Blob
                b = Blob()
                with b.open("w") as f:
                    f.write(b"%d" % value)
                roots[touch[0]]["blob"] = b
            if between:
                txn.join(Pause(between, args.between_ms / 1000.0))
            if reporter:
                txid = "%d-%d" % (os.getpid(), done + conflicts)
                reporter.begin(txid, [ids[n] for n in touch])
            tm.commit()
            if reporter:
                reporter.commit(txid, {ids[n]: int.from_bytes(roots[n]._p_serial, "big") for n in touch})
        except ConflictError:
            tm.abort()
            if reporter and txid:
                reporter.abort(txid)
            conflicts += 1
            streak += 1
            # Jittered exponential backoff, as any retrying client needs.
            time.sleep(random.uniform(0, min(0.1, 0.002 * 2 ** streak)))
            continue
        except (ClientDisconnected, TransientError) as e:
            # A server or proxy restart: retry as Zope would.
            tm.abort()
            if reporter and txid:
                reporter.abort(txid)
            sys.stderr.write("retrying after %s\n" % type(e).__name__)
            time.sleep(0.1)
            continue
        done += 1
        streak = 0
        # Two writers of the same objects in tight loops livelock, with or
        # without a proxy: the winner commits every few ms and the loser's
        # snapshot is always one commit behind (seen straight against ZEO:
        # 0 commits in 24 s for one of two writers). A pause of up to 4 ms
        # after each commit gives the other writer its turn.
        time.sleep(random.uniform(0, 0.004))
        emit(dict({n: roots[n]._p_serial.hex() for n in touch}, counter=str(value)))
    conn.close()


class SortedResource:
    """A resource manager that only takes a place in the commit order (its
    sortKey); subclasses act in tpc_finish."""

    def __init__(self, key):
        self.key = key

    def sortKey(self):
        return self.key

    def abort(self, txn):
        pass

    tpc_begin = commit = tpc_vote = tpc_abort = abort

    def tpc_finish(self, txn):
        pass


class Pause(SortedResource):
    """Ordered between two storages, its tpc_finish sleeps: the transaction
    stands finished on the first storage and voted on the other meanwhile."""

    def __init__(self, key, seconds):
        SortedResource.__init__(self, key)
        self.seconds = seconds

    def tpc_finish(self, txn):
        time.sleep(self.seconds)


class Killer(SortedResource):
    """Ordered between two storages, its tpc_finish kills the process (or,
    with block_until, waits for that file)."""

    def __init__(self, key, block_until=None, block_seconds=0):
        SortedResource.__init__(self, key)
        self.block_until = block_until
        self.block_seconds = block_seconds

    def tpc_finish(self, txn):
        if self.block_until:
            emit({"between": "1"})
            deadline = time.time() + self.block_seconds
            while not os.path.exists(self.block_until):
                if time.time() > deadline:
                    raise SystemExit("crash-between: %s never appeared" % self.block_until)
                time.sleep(0.02)
            return
        sys.stdout.flush()
        os._exit(17)


def crash_between(dbs, args):
    tm = transaction.TransactionManager()
    conn = dbs[0].open(tm)
    first = conn.get_connection(args.first)
    then = conn.get_connection(args.then)
    kf, kt = first.sortKey(), then.sortKey()
    if not kf < kt:
        raise SystemExit("crash-between: %r must sort before %r" % (kf, kt))
    # A key strictly between: kf followed by the highest character.
    key = kf + "\U0010ffff"
    assert kf < key < kt, (kf, key, kt)
    txn = tm.begin()
    txn.note(args.desc)
    first.root()["counter"] = first.root().get("counter", 0) + 1
    then.root()["counter"] = then.root().get("counter", 0) + 1
    txn.join(Killer(key, args.block_until, args.block_seconds))
    emit({"pid": str(os.getpid()), "first": kf, "then": kt})
    tm.commit()
    if args.block_until:
        emit({"committed": "1"})
        return
    raise SystemExit("crash-between: the process should have died in tpc_finish")


def hold(dbs, args):
    """Begins a two-phase commit on the first storage and keeps it open."""
    from ZODB.Connection import TransactionMetaData
    st = dbs[0].storage
    txn = TransactionMetaData(description="held")
    st.tpc_begin(txn)
    if args.vote:
        st.tpc_vote(txn)
    else:
        # tpc_begin is a one-way call: a synchronous one on the same
        # connection makes sure it reached the server (and the proxy) before
        # we say so.
        st.server_status()
    emit({"holding": "1"})
    time.sleep(args.seconds)
    st.tpc_abort(txn)


def root_history(args):
    """root[key] after each transaction that wrote the root object."""
    from ZODB.utils import z64
    out = {}
    for spec in args.db:
        name, address, storage = parse_db(spec)
        cs = ClientStorage(address, storage=storage, read_only=True, wait_timeout=30, **SSL)
        db = ZODB.DB(cs)
        try:
            tids = [h["tid"] for h in cs.history(z64, size=1000000)]
            vals = []
            for tid in reversed(tids):
                conn = db.open(at=tid)
                vals.append([tid.hex(), conn.root().get(args.key)])
                conn.close()
            out[name] = vals
        finally:
            db.close()
    emit(out)


def read_at(args):
    """One output line per --at, in order; each storage is opened once."""
    points = [dict(item.split("=", 1) for item in at.split(",")) for at in args.at]
    names = set(n for p in points for n in p)
    dbs = {}
    try:
        for spec in args.db:
            name, address, storage = parse_db(spec)
            if name in names:
                cs = ClientStorage(address, storage=storage, read_only=True, wait_timeout=30, **SSL)
                dbs[name] = ZODB.DB(cs)
        for want in points:
            out = {}
            for name, tid in want.items():
                conn = dbs[name].open(at=bytes.fromhex(tid))
                out[name] = {"counter": conn.root().get("counter")}
                conn.close()
            emit(out)
    finally:
        for db in dbs.values():
            db.close()


if __name__ == "__main__":
    main()
