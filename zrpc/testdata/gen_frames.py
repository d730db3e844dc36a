"""Regenerate zrpc golden frames with ZEO's own encoder.

Run from the repo root:
    .venv-zeo/bin/python zrpc/testdata/gen_frames.py

Writes zrpc/testdata/frames/{z5,m5}_<name>.bin: the payload of one frame
(without the 4-byte length header), exactly as ZEO.asyncio.marshal encodes it
(client or server side, as a real ZEO 5/6 peer would). Z4 (protocol-1) frames
are hand-encoded from the spec in Go tests (no ZEO 4 runs on this Python).
"""
import os
import sys

from ZEO.asyncio.marshal import encoder, reduce_exception
from ZODB.POSException import ConflictError, POSKeyError
from ZODB.utils import p64

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'frames')
os.makedirs(out, exist_ok=True)

TXNID = 140234567890123          # a CPython id(): > 2**32
BIGTXNID = 18446744073709551557  # > 2**63, still < 2**64
OID1, OID2 = p64(1), p64(0x1234)
TID = b'\x03\xec\x8a\x5b\x12\x34\x56\x78'
TID2 = b'\x03\xec\x8a\x5b\x12\x34\x56\x99'
Z64 = b'\0' * 8


def conflict():
    e = ConflictError(oid=OID2, serials=(TID2, TID), data=b'state')
    return reduce_exception(e)


def poskey():
    return reduce_exception(POSKeyError(OID1))


# name -> (server side?, message tuple)
MESSAGES = {
    'heartbeat': (False, (-1, 0, '.reply', None)),
    'register': (False, (1, False, 'register', ('1', False))),
    'register_ro': (False, (1, False, 'register', ('main', True))),
    'register_reply': (True, (1, 0, '.reply', TID)),
    'register_reply_empty': (True, (1, 0, '.reply', Z64)),
    'get_info': (False, (2, False, 'get_info', ())),
    'get_info_reply': (True, (2, 0, '.reply', {
        'length': 3, 'size': 4567, 'name': '/tmp/x/Data.fs',
        'supportsUndo': True, 'supports_record_iternext': True,
        'interfaces': (('ZODB.interfaces', 'IStorage'),
                       ('zope.interface', 'Interface'))})),
    'last_transaction': (False, (3, False, 'lastTransaction', ())),
    'last_transaction_reply': (True, (3, 0, '.reply', TID)),
    'ping': (False, (4, False, 'ping', ())),
    'ping_reply': (True, (4, 0, '.reply', None)),
    'tpc_begin': (False, (0, True, 'tpc_begin',
                          (TXNID, b'user', b'desc', {'x': 'y'}, None, ' '))),
    'tpc_begin_empty': (False, (0, True, 'tpc_begin',
                                (TXNID, b'', b'', {}, None, ' '))),
    'tpc_begin_bigtxnid': (False, (0, True, 'tpc_begin',
                                   (BIGTXNID, b'/plone admin',
                                    'caf\u00e9 \u2603'.encode('utf-8'),
                                    {'user_name': 'admin', 'n': 42},
                                    None, ' '))),
    'storea': (False, (0, True, 'storea', (OID1, TID, b'\x80\x03data', TXNID))),
    'storea_new': (False, (0, True, 'storea', (OID2, Z64, b'x' * 300, TXNID))),
    'vote': (False, (7, False, 'vote', (TXNID,))),
    'vote_reply': (True, (7, 0, '.reply', [])),
    'vote_reply_resolved': (True, (7, 0, '.reply', [OID1, OID2])),
    'vote_reply_conflict': (True, (7, 0, '.reply', [
        {'oid': OID2, 'serials': (TID2, TID), 'data': b'state'}])),
    'vote_error_conflict': (True, (7, 2, '.reply', conflict())),
    'tpc_finish': (False, (8, False, 'tpc_finish', (TXNID,))),
    'tpc_finish_reply': (True, (8, 0, '.reply', TID)),
    'tpc_abort': (False, (9, False, 'tpc_abort', (TXNID,))),
    'tpc_abort_reply': (True, (9, 0, '.reply', None)),
    'load_before': (False, ((OID1, TID), False, 'loadBefore', (OID1, TID))),
    'load_before_reply': (True, ((OID1, TID), 0, '.reply',
                                 (b'\x80\x03state', TID2, None))),
    'load_before_poskey': (True, ((OID1, TID), 2, '.reply', poskey())),
    'invalidate': (True, (0, True, 'invalidateTransaction', (TID, [OID1, OID2]))),
    'invalidate_empty': (True, (0, True, 'invalidateTransaction', (TID, []))),
    'info': (True, (0, True, 'info', ({'length': 3, 'size': 4567},))),
    'iterator_start': (False, (10, False, 'iterator_start', (TID, None))),
    'iterator_start_reply': (True, (10, 0, '.reply', 1)),
    'iterator_next': (False, (11, False, 'iterator_next', (1,))),
    'iterator_next_reply': (True, (11, 0, '.reply',
                                   (TID, ' ', b'user', b'desc', {'x': 'y'}))),
    'iterator_next_end': (True, (12, 0, '.reply', None)),
    'store_blob_chunk': (False, (0, True, 'storeBlobChunk', (b'b' * 100,))),
    'big_msgid': (False, (70000, False, 'ping', ())),
    'huge_msgid': (False, (2**40, False, 'ping', ())),
}


def main():
    n = 0
    for name, (server, msg) in sorted(MESSAGES.items()):
        for letter in (b'Z', b'M'):
            data = encoder(letter + b'5', server=server)(*msg)
            fn = os.path.join(out, '%s5_%s.bin' % (letter.decode().lower(), name))
            with open(fn, 'wb') as f:
                f.write(data)
            n += 1
    print('wrote %d frames to %s' % (n, out), file=sys.stderr)


if __name__ == '__main__':
    main()
