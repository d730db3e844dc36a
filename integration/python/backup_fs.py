"""ZODB FileStorage helper for tidstorage's backup tests (no ZEO).

Opens a FileStorage file directly with ZODB and prints JSON on stdout.
TIDs are 16-hex strings.

  write --fs PATH [--blob-dir DIR] --count N [--key K] [--big BYTES]
      N transactions, transaction i setting root[K] (default 'counter') to the
      previous value + 1, and with --blob-dir also rewriting root['blob'] (a
      Blob) to b"blob <value>". --big adds a string of that many bytes to each
      transaction. --objects K also replaces root["o<value % K>"] with a new
      PersistentMapping each time (new oids, old ones unreachable). Prints {"tids": [every committed TID in the file, in
      order], "new": [the TIDs of these N transactions], "values": [the
      counter value each of them wrote]}.
  read --fs PATH [--blob-dir DIR] [--key K]
      Opens the file read-only (read-write with --blob-dir: blob storages need
      it) and prints {"last": lastTransaction, "tids": [every TID],
      "value": root[K] or null, "blob": blob content or null, "objects": n}
      after loading every object of every transaction's current revision.
  index --fs PATH
      Loads PATH.index with ZODB's fsIndex and compares it with an index
      rebuilt by ZODB's read_index from the file; then opens the file
      read-only and says whether FileStorage accepted the saved index.
      Prints {"pos", "end", "len", "equal", "ignored"}.
  hold --fs PATH
      Opens the file read-write (taking ZODB's Data.fs.lock), prints
      {"pid": ...} and keeps it open until its standard input closes.
"""
import argparse
import json
import os
import sys

import transaction
import ZODB
from ZODB.FileStorage import FileStorage
from ZODB.blob import Blob
from persistent.mapping import PersistentMapping
from ZODB.utils import u64


def hex_tid(t):
    return "%016x" % u64(t)


def open_db(args, read_only):
    fs = FileStorage(args.fs, read_only=read_only, blob_dir=args.blob_dir)
    return fs, ZODB.DB(fs)


def all_tids(fs):
    return [hex_tid(t.tid) for t in fs.iterator()]


def cmd_write(args):
    fs, db = open_db(args, False)
    conn = db.open()
    root = conn.root()
    new, values = [], []
    for _ in range(args.count):
        value = root.get(args.key, 0) + 1
        root[args.key] = value
        if args.big:
            root["big"] = "x" * args.big + str(value)
        if args.objects:
            root["o%d" % (value % args.objects)] = PersistentMapping(v=value)
        if args.blob_dir:
            if "blob" not in root:
                root["blob"] = Blob()
            with root["blob"].open("w") as f:
                f.write(b"blob %d" % value)
        transaction.get().note("write %s=%d" % (args.key, value))
        transaction.commit()
        new.append(hex_tid(fs.lastTransaction()))
        values.append(value)
    tids = all_tids(fs)
    conn.close()
    db.close()
    print(json.dumps({"tids": tids, "new": new, "values": values}))


def cmd_read(args):
    # A blob storage must be opened read-write by ZODB to serve blobs.
    fs, db = open_db(args, not args.blob_dir)
    out = {"last": hex_tid(fs.lastTransaction()), "tids": all_tids(fs)}
    conn = db.open()
    root = conn.root()
    out["value"] = root.get(args.key)
    out["blob"] = None
    if args.blob_dir and "blob" in root:
        with root["blob"].open("r") as f:
            out["blob"] = f.read().decode()
    # Load and unpickle the current revision of every object the file has
    # records for, to prove the records parse.
    oids = set()
    for txn in fs.iterator():
        for rec in txn:
            oids.add(rec.oid)
    seen = set()
    for oid in sorted(oids):
        obj = conn.get(oid)
        if isinstance(obj, Blob) and not args.blob_dir:
            continue  # blob data needs the blob directory
        obj._p_activate()
        seen.add(oid)
    out["objects"] = len(seen)
    conn.close()
    db.close()
    print(json.dumps(out))


def cmd_index(args):
    import logging
    from ZODB.fsIndex import fsIndex
    from ZODB.FileStorage.FileStorage import read_index
    info = fsIndex.load(args.fs + ".index")
    saved, pos = info["index"], info["pos"]
    rebuilt = fsIndex()
    with open(args.fs, "rb") as f:
        end, _, _ = read_index(f, args.fs, rebuilt, {}, read_only=1)
    equal = dict(saved.items()) == dict(rebuilt.items())

    messages = []

    class Capture(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    logger = logging.getLogger("ZODB.FileStorage")
    logger.addHandler(Capture())
    logger.setLevel(logging.DEBUG)
    fs = FileStorage(args.fs, read_only=True)
    fs.close()
    ignored = any("Ignoring index" in m for m in messages)
    print(json.dumps({"pos": pos, "end": end, "len": len(saved),
                      "equal": equal, "ignored": ignored}))


def cmd_hold(args):
    fs = FileStorage(args.fs)
    print(json.dumps({"pid": os.getpid()}), flush=True)
    sys.stdin.read()
    fs.close()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("write", "read", "index", "hold"):
        s = sub.add_parser(name)
        s.add_argument("--fs", required=True)
        s.add_argument("--blob-dir")
        s.add_argument("--key", default="counter")
        if name == "write":
            s.add_argument("--count", type=int, required=True)
            s.add_argument("--big", type=int, default=0)
            s.add_argument("--objects", type=int, default=0)
    args = p.parse_args()
    {"write": cmd_write, "read": cmd_read, "index": cmd_index, "hold": cmd_hold}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
