"""Run the original Products.TIDStorage test suite against a classic endpoint.

Usage: original_suite.py HOST PORT

The suite (Products/TIDStorage/tests/testTIDServer.py, with its TIDClient
and ExchangeProtocol) is Python 2 code published on the package index; it
is not part of this repository. This helper downloads the pinned sdist
once into the venv, converts the three files to Python 3 in a temporary
directory (lib2to3, plus str/bytes at the socket), runs every test_*
method in the original's order and prints one JSON object:
{"passed": [...], "failed": {"test": "assertion"}}.
Exit status 0 only when every test passed.
"""
import glob
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import traceback
import warnings

SDIST = "Products.TIDStorage==5.5.0"
FILES = {
    "TIDClient.py": "Products/TIDStorage/TIDClient.py",
    "ExchangeProtocol.py": "Products/TIDStorage/ExchangeProtocol.py",
    "testTIDServer.py": "Products/TIDStorage/tests/testTIDServer.py",
}


def sdist_path():
    cache = os.path.join(sys.prefix, "original-tidstorage")
    found = glob.glob(os.path.join(cache, "Products*TIDStorage-5.5.0.tar.gz"))
    if not found:
        os.makedirs(cache, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                        "--no-deps", "--no-binary", ":all:", "-d", cache, SDIST],
                       check=True, stdout=sys.stderr)
        found = glob.glob(os.path.join(cache, "Products*TIDStorage-5.5.0.tar.gz"))
    if not found:
        sys.exit("original_suite: %s not found after download into %s" % (SDIST, cache))
    return found[0]


def to_python3(name, src):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lib2to3.refactor import RefactoringTool, get_fixers_from_package
        tool = RefactoringTool(get_fixers_from_package("lib2to3.fixes"))
    out = str(tool.refactor_string(src if src.endswith("\n") else src + "\n", name))
    if name == "ExchangeProtocol.py":
        # The protocol is text lines; Python 3 sockets carry bytes.
        send = "self._socket.send(to_send)\n    self._socket.send('\\n')"
        recv = "received = self._socket.recv(1)"
        if send not in out or recv not in out:
            sys.exit("original_suite: ExchangeProtocol.py is not the expected 5.5.0 text")
        out = out.replace(send, "self._socket.sendall((to_send + '\\n').encode())")
        out = out.replace(recv, "received = self._socket.recv(1).decode()")
    return out


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    work = tempfile.mkdtemp(prefix="original-suite-")
    with tarfile.open(sdist_path()) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name}
        for dst, src in FILES.items():
            text = tar.extractfile(members[src]).read().decode("utf-8")
            with open(os.path.join(work, dst), "w") as f:
                f.write(to_python3(dst, text))
    sys.path.insert(0, work)
    import testTIDServer  # noqa: E402 (the converted original)

    suite = testTIDServer.TestTIDServerV2(host, port)
    passed, failed = [], {}
    # The original's run(): every test_* method, in dir() order.
    for name in [x for x in dir(suite) if x.startswith("test")]:
        try:
            getattr(suite, name)(test_id=name)
        except AssertionError as e:
            failed[name] = str(e) or traceback.format_exc()
        else:
            passed.append(name)
    print(json.dumps({"passed": passed, "failed": failed}))
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
