#!/usr/bin/env python3
"""Drive a classic TIDStorage endpoint with plain sockets and check its DUMPs.

Written from classic-protocol.md alone (no code shared with the Go server),
standard library only. Usage:

    classic_client.py HOST PORT

Runs the scenarios of the original daemon's test suite, each on its own
storage ids (prefixed with the scenario name), alternating two connections:
one speaking upper case with "\\n", the other mixed case with "\\r\\n" and
TIDs written with a trailing L. After every step it reads DUMP and compares
the scenario's storages with what the original daemon answered.

Prints one JSON object per step on stdout:
    {"scenario": NAME, "step": N, "dump": {STORAGE: TID}}
then {"final": FULL_DUMP}. Exits 1 on the first mismatch or protocol error.
"""

import json
import socket
import sys
import time

TIMEOUT = 10.0


class ProtocolError(Exception):
    pass


class Conn:
    """One connection. crlf/mixed_case/long_suffix vary the encoding."""

    def __init__(self, host, port, crlf=False, mixed_case=False, long_suffix=False):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.settimeout(TIMEOUT)
        # A command without reply followed by DUMP would otherwise wait for
        # the server's delayed ACK (Nagle), making each step ~40 ms.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.eol = b"\r\n" if crlf else b"\n"
        self.mixed_case = mixed_case
        self.long_suffix = long_suffix
        self.buf = b""

    # -- encoding -----------------------------------------------------------

    def field(self, value):
        if isinstance(value, str):
            value = value.encode("utf-8")
        if b"\n" in value or b"\r" in value:
            raise ValueError("a field may not contain \\n or \\r: %r" % value)
        return value + self.eol

    def int_field(self, n):
        return self.field(str(n) + ("L" if self.long_suffix else ""))

    def command(self, name):
        if self.mixed_case:
            name = "".join(c.lower() if i % 2 else c for i, c in enumerate(name))
        return self.field(name)

    def send(self, data):
        self.sock.sendall(data)

    # -- decoding -----------------------------------------------------------

    def recv_field(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ProtocolError("connection closed while reading a field")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.replace(b"\r", b"").decode("utf-8")

    def recv_int(self):
        text = self.recv_field()
        if text.endswith("L"):
            text = text[:-1]
        if not text.isdigit():
            raise ProtocolError("expected an int, got %r" % text)
        return int(text)

    def recv_dict(self):
        count = self.recv_int()
        keys = [self.recv_field() for _ in range(count)]
        values = [self.recv_int() for _ in range(count)]
        return dict(zip(keys, values))

    # -- commands -----------------------------------------------------------

    def begin(self, txn, storages):
        data = self.command("BEGIN") + self.field(txn) + self.int_field(len(storages))
        for s in storages:
            data += self.field(s)
        self.send(data)

    def commit(self, txn, tids):
        keys = list(tids)
        data = self.command("COMMIT") + self.field(txn) + self.int_field(len(keys))
        for k in keys:
            data += self.field(k)
        for k in keys:
            data += self.int_field(tids[k])
        self.send(data)

    def abort(self, txn):
        self.send(self.command("ABORT") + self.field(txn))

    def dump(self):
        self.send(self.command("DUMP"))
        return self.recv_dict()

    def bootstraped(self):
        self.send(self.command("BOOTSTRAPED"))
        value = self.recv_int()
        if value not in (0, 1):
            raise ProtocolError("BOOTSTRAPED answered %d" % value)
        return value == 1

    def quit(self):
        self.send(self.command("QUIT"))
        if self.sock.recv(1) != b"":
            raise ProtocolError("server sent data after QUIT")
        self.sock.close()


# The original daemon's test suite (product/TIDStorage/tests/testTIDServer.py,
# as described in classic-protocol.md) plus a lower TID after a published
# one. Each step: (op, transaction, storages or TIDs, expected DUMP after it).
SCENARIOS = [
    ("single", [
        ("begin", "t1", ["s1"], {}),
        ("commit", "t1", {"s1": 1}, {"s1": 1}),
    ]),
    ("aborted", [
        ("begin", "t1", ["s1"], {}),
        ("abort", "t1", None, {}),
    ]),
    ("overlapping, second ends first", [
        ("begin", "t1", ["s1", "s2"], {}),
        ("begin", "t2", ["s1", "s3"], {}),
        ("commit", "t2", {"s1": 2, "s3": 1}, {}),
        ("commit", "t1", {"s1": 1, "s2": 1}, {"s1": 2, "s2": 1, "s3": 1}),
    ]),
    ("overlapping, lower TID after a higher one", [
        ("begin", "t1", ["s1"], {}),
        ("begin", "t2", ["s1", "s2"], {}),
        ("commit", "t1", {"s1": 2}, {}),
        ("commit", "t2", {"s1": 1, "s2": 1}, {"s1": 2, "s2": 1}),
    ]),
    ("transitive group", [
        ("begin", "t1", ["s1", "s2"], {}),
        ("begin", "t2", ["s1", "s3"], {}),
        ("commit", "t2", {"s1": 2, "s3": 1}, {}),
        ("begin", "t3", ["s3"], {}),
        ("commit", "t3", {"s3": 1}, {}),
        ("commit", "t1", {"s1": 1, "s2": 2}, {"s1": 2, "s2": 2, "s3": 1}),
    ]),
    ("transitive group, first aborted", [
        ("begin", "t1", ["s1", "s2"], {}),
        ("begin", "t2", ["s1", "s3"], {}),
        ("commit", "t2", {"s1": 2, "s3": 1}, {}),
        ("begin", "t3", ["s3"], {}),
        ("commit", "t3", {"s3": 1}, {}),
        ("abort", "t1", None, {"s1": 2, "s3": 1}),
    ]),
    ("disjoint groups publish independently", [
        ("begin", "t1", ["s1"], {}),
        ("begin", "t2", ["s2"], {}),
        ("commit", "t1", {"s1": 1}, {"s1": 1}),
        ("commit", "t2", {"s2": 1}, {"s1": 1, "s2": 1}),
    ]),
    ("groups joined by a third transaction", [
        ("begin", "t1", ["s1"], {}),
        ("begin", "t2", ["s2"], {}),
        ("begin", "t3", ["s1", "s2"], {}),
        ("commit", "t1", {"s1": 1}, {}),
        ("commit", "t2", {"s2": 2}, {}),
        ("commit", "t3", {"s1": 2, "s2": 2}, {"s1": 2, "s2": 2}),
    ]),
    ("id reuse", [
        ("begin", "127.0.0.1:8080_7f3a", ["s1"], {}),
        ("commit", "127.0.0.1:8080_7f3a", {"s1": 1}, {"s1": 1}),
        ("begin", "127.0.0.1:8080_7f3a", ["s1"], {"s1": 1}),
        ("commit", "127.0.0.1:8080_7f3a", {"s1": 2}, {"s1": 2}),
        ("begin", "127.0.0.1:8080_7f3a", ["s1", "s2"], {"s1": 2}),
        ("abort", "127.0.0.1:8080_7f3a", None, {"s1": 2}),
    ]),
    ("lower TID after a published higher one", [
        ("begin", "t1", ["s1"], {}),
        ("commit", "t1", {"s1": 5}, {"s1": 5}),
        ("begin", "t2", ["s1"], {"s1": 5}),
        ("commit", "t2", {"s1": 3}, {"s1": 5}),
        ("begin", "t3", ["s1"], {"s1": 5}),
        ("commit", "t3", {"s1": 6}, {"s1": 6}),
    ]),
]

BOOT = "((('localhost', 8100),), '1')"


def scoped(name, storage):
    # Realistic storage ids (the repr of a ZEO client's address and storage
    # name), made unique per scenario.
    return "%s|((('localhost', 8%s00),), '%s')" % (name, storage[1:], storage[1:])


def unscoped(name, dump):
    prefix = name + "|"
    out = {}
    for key, value in dump.items():
        if key.startswith(prefix):
            # back to s1, s2... from "((('localhost', 8100),), '1')"
            out["s" + key[len(prefix):].rsplit("'", 2)[-2]] = value
    return out


def bootstrap(conn):
    if conn.bootstraped():
        raise ProtocolError("bootstrap done before any commit")
    deadline = time.time() + TIMEOUT
    tid = 0
    while True:
        tid += 1
        conn.begin("boot", [BOOT])
        conn.commit("boot", {BOOT: tid})
        if conn.bootstraped() and conn.dump().get(BOOT) == tid:
            return
        if time.time() > deadline:
            raise ProtocolError("no bootstrap after %d transactions" % tid)
        time.sleep(0.01)


def run(host, port):
    conns = [Conn(host, port), Conn(host, port, crlf=True, mixed_case=True, long_suffix=True)]
    bootstrap(conns[0])
    for name, steps in SCENARIOS:
        txn_prefix = name.replace(" ", "_") + ":"
        for i, (op, txn, arg, want) in enumerate(steps):
            # Alternate connections: a transaction is not bound to one.
            conn = conns[i % 2]
            txn = txn_prefix + txn
            if op == "begin":
                conn.begin(txn, [scoped(name, s) for s in arg])
            elif op == "commit":
                conn.commit(txn, {scoped(name, s): v for s, v in arg.items()})
            else:
                conn.abort(txn)
            # DUMP on the same connection: replies come in order, so the
            # step above was processed.
            got = unscoped(name, conn.dump())
            print(json.dumps({"scenario": name, "step": i + 1, "dump": got}), flush=True)
            if got != want:
                raise ProtocolError("%s, step %d (%s %s): DUMP %r, expected %r"
                                    % (name, i + 1, op, txn, got, want))
    final = conns[1].dump()
    print(json.dumps({"final": final}), flush=True)
    for conn in conns:
        conn.quit()


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: classic_client.py HOST PORT\n")
        return 2
    try:
        run(sys.argv[1], int(sys.argv[2]))
    except (ProtocolError, OSError, ValueError) as exc:
        sys.stderr.write("classic_client: %s\n" % exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
