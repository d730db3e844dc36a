"""Drive a real ZODB client through every ZEO wire case zrpc's capture tests
check (used by zrpc/realzeo_test.go, pointed at a recording pass-through).

  capture_client.py --addr HOST:PORT --blob-dir DIR

Databases: a = storage "1" (with blobs), b = storage "2", both through ADDR.
Steps, each printing one JSON line:
  open       {"step": "open", "last": {db: tid-hex}}   (root creation commits)
  multi      one transaction creating many objects in a and b -> {"tids": {db: tid}}
  abort      a vote that fails in a later resource manager -> tpc_abort on a and b
  conflict   a second client on a commits over a stale read -> ConflictError
  blob       a blob stored on a (streamed storeBlob*) and read back (sendBlob)
  heartbeat  sleeps past a few heartbeats (interval lowered to 0.2 s)
TIDs are 16-hex strings.
"""
import argparse
import json
import os
import sys
import time

import ZEO.asyncio.client
# ZEO sends a heartbeat every 60 s; ClientStorage has no option for it, so
# lower the Protocol default to see heartbeats within a test.
_orig_init = ZEO.asyncio.client.Protocol.__init__


def _init(self, *args, **kw):
    kw['heartbeat_interval'] = 0.2
    _orig_init(self, *args, **kw)


ZEO.asyncio.client.Protocol.__init__ = _init

import transaction  # noqa: E402
import ZODB  # noqa: E402
from persistent.mapping import PersistentMapping  # noqa: E402
from ZEO.ClientStorage import ClientStorage  # noqa: E402
from ZODB.blob import Blob  # noqa: E402
from ZODB.POSException import ConflictError  # noqa: E402


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


class FailingVote:
    """A resource manager sorted after the storages whose vote fails."""

    def sortKey(self):
        return '~~~ fail last'

    def abort(self, txn):
        pass

    def tpc_begin(self, txn):
        pass

    def commit(self, txn):
        pass

    def tpc_vote(self, txn):
        raise RuntimeError('vote refused on purpose')

    def tpc_finish(self, txn):
        pass

    def tpc_abort(self, txn):
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--addr', required=True)
    p.add_argument('--blob-dir', required=True)
    args = p.parse_args()
    host, _, port = args.addr.rpartition(':')
    addr = (host, int(port))

    databases = {}
    csa = ClientStorage(addr, storage='1', wait_timeout=30,
                        blob_dir=os.path.join(args.blob_dir, 'a'))
    dba = ZODB.DB(csa, databases=databases, database_name='a')
    csb = ClientStorage(addr, storage='2', wait_timeout=30)
    dbb = ZODB.DB(csb, databases=databases, database_name='b')
    emit({'step': 'open', 'last': {'a': csa.lastTransaction().hex(),
                                    'b': csb.lastTransaction().hex()}})

    tm = transaction.TransactionManager()
    conn = dba.open(tm)
    ra = conn.root()
    rb = conn.get_connection('b').root()

    # multi-object commit on both databases
    tm.begin()
    tm.get().note('capture multi')
    tm.get().setUser('capture')
    for i in range(20):
        ra['m%d' % i] = PersistentMapping({'i': i, 'pad': 'x' * 500})
    for i in range(5):
        rb['m%d' % i] = PersistentMapping({'i': i})
    ra['counter'] = 1
    rb['counter'] = 1
    tm.commit()
    emit({'step': 'multi', 'tids': {'a': ra._p_serial.hex(), 'b': rb._p_serial.hex()}})

    # abort after both storages voted
    tm.begin()
    tm.get().note('capture abort')
    ra['counter'] = 2
    rb['counter'] = 2
    tm.get().join(FailingVote())
    try:
        tm.commit()
    except RuntimeError:
        tm.abort()
        emit({'step': 'abort', 'raised': 'RuntimeError'})
    else:
        raise SystemExit('abort step: commit unexpectedly succeeded')

    # conflict: a second client reads, the first commits, the second writes
    db2 = ZODB.DB(ClientStorage(addr, storage='1', wait_timeout=30,
                                blob_dir=os.path.join(args.blob_dir, 'a2')))
    tm2 = transaction.TransactionManager()
    c2 = db2.open(tm2)
    tm2.begin()
    r2 = c2.root()
    m2 = r2['m1']
    m2['i']  # load it in the stale view
    tm.begin()
    ra['m1']['i'] = 100
    tm.get().note('capture winner')
    tm.commit()
    emit({'step': 'winner', 'tids': {'a': ra['m1']._p_serial.hex()}})
    m2['i'] = 200
    try:
        tm2.commit()
    except ConflictError as e:
        tm2.abort()
        emit({'step': 'conflict', 'raised': type(e).__name__})
    else:
        raise SystemExit('conflict step: commit unexpectedly succeeded')
    c2.close()
    db2.close()

    # blob store, then read back through a fresh blob cache (sendBlob)
    tm.begin()
    tm.get().note('capture blob')
    ra['blob'] = Blob(b'B' * 200000)
    tm.commit()
    emit({'step': 'blob', 'tids': {'a': ra._p_serial.hex()}})  # the root changed too
    db3 = ZODB.DB(ClientStorage(addr, storage='1', wait_timeout=30,
                                blob_dir=os.path.join(args.blob_dir, 'a3')))
    c3 = db3.open()
    with c3.root()['blob'].open() as f:
        assert f.read() == b'B' * 200000
    c3.close()
    db3.close()
    emit({'step': 'blob-read'})

    time.sleep(1.0)
    emit({'step': 'heartbeat'})
    conn.close()
    dba.close()
    dbb.close()


if __name__ == '__main__':
    main()
