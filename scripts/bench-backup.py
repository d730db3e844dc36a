#!/usr/bin/env python3
"""Backup and restore side by side on one Data.fs with a warm page cache.

Every round runs each command once, in the same order (md5sum, cp, repozo,
tidstorage), so that a slow moment of a shared machine hits every command of
a round, not one command's runs; each command starts after a sync (the
writeback of the ones before is not its cost): the figures are medians over the rounds of
the wall-clock time and of the CPU time (user + system) of the command's
process tree, and the ratios (tidstorage backup / md5sum, tidstorage restore
/ repozo -R) are the medians of the per-round ratios.

Usage: bench-backup.py --work DIR --tidstorage BIN --venv VENV --tid TID
       [--rounds N] [--base OLD_BIN]
DIR holds Data.fs (written by the caller) and t.hcl; --base adds the same
tidstorage commands run by an older binary, in the same rounds.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def run(cmd, cwd):
    """Runs cmd, returns (wall seconds, CPU seconds of the process tree)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if p.returncode != 0:
        sys.exit("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), err))
    return wall, ru.ru_utime + ru.ru_stime


def rm(*paths):
    for p in paths:
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.lexists(p):
            os.remove(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--tidstorage", required=True)
    ap.add_argument("--base")
    ap.add_argument("--venv", required=True)
    ap.add_argument("--tid", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    w = a.work
    repozo = os.path.join(a.venv, "bin", "repozo")
    J = lambda *p: os.path.join(w, *p)

    bins = [("", a.tidstorage)]
    if a.base:
        bins.append((" [base]", a.base))
    # (label, preparation, command); each tidstorage restore and verify uses
    # the backup made by the same binary in the same round.
    steps = [
        ("md5sum", lambda: None, ["md5sum", "Data.fs"]),
        ("cp", lambda: rm(J("copy.fs")), ["cp", "Data.fs", "copy.fs"]),
        ("repozo -B -F", lambda: (rm(J("rz")), os.mkdir(J("rz"))), [repozo, "-B", "-F", "-r", "rz", "-f", "Data.fs"]),
        ("repozo -R", lambda: rm(J("out.fs")), [repozo, "-R", "-r", "rz", "-o", "out.fs"]),
    ]
    for suffix, b in bins:
        steps += [
            ("tidstorage backup (full)" + suffix, lambda: rm(J("repo")),
             [b, "backup", "-c", "t.hcl", "--tid", "s=" + a.tid, "--progress", "0"]),
            ("tidstorage restore" + suffix, lambda: rm(J("out")),
             [b, "restore", "-c", "t.hcl", "--to", "out", "--progress", "0"]),
            ("tidstorage verify" + suffix, lambda: None, [b, "verify", "-c", "t.hcl"]),
        ]
    res = {label: [] for label, _, _ in steps}
    loads = []
    subprocess.run(["cat", J("Data.fs")], stdout=subprocess.DEVNULL, check=True)  # warm the cache
    for r in range(a.rounds):
        for label, prep, cmd in steps:
            prep()
            # Every command starts with the previous ones' writes on disk:
            # else it pays for their writeback (and a fast writer for
            # everyone's dirty pages).
            subprocess.run(["sync"], check=True)
            res[label].append(run(cmd, w))
        loads.append(os.getloadavg()[0])
        print("round %d/%d done, load average %.1f" % (r + 1, a.rounds, loads[-1]), file=sys.stderr)
    rm(J("out"), J("out.fs"), J("copy.fs"))

    size = os.path.getsize(J("Data.fs")) >> 20
    print("== backup and restore, %d MiB Data.fs, %d cores, %d interleaved rounds (median, min - max)" % (size, os.cpu_count(), a.rounds))
    print("load average (1 min) at the end of each round: %s" % ", ".join("%.1f" % x for x in loads))
    print("%-34s %22s %22s" % ("", "wall s", "CPU s (user+sys)"))
    for label, _, _ in steps:
        ws = [x[0] for x in res[label]]
        cs = [x[1] for x in res[label]]
        print("%-34s %6.2f (%5.2f - %5.2f) %6.2f (%5.2f - %5.2f)" % (
            label, statistics.median(ws), min(ws), max(ws), statistics.median(cs), min(cs), max(cs)))

    def ratio(num, den, i):
        rs = [n[i] / d[i] for n, d in zip(res[num], res[den])]
        return statistics.median(rs), min(rs), max(rs)

    for suffix, _ in bins:
        for num, den, goal in [("tidstorage backup (full)" + suffix, "md5sum", "goal <= 1.3"),
                               ("tidstorage restore" + suffix, "repozo -R", "goal < 1")]:
            rw, rc = ratio(num, den, 0), ratio(num, den, 1)
            print("ratio %s / %s: wall %.2f (%.2f - %.2f), CPU %.2f (%.2f - %.2f)  [%s]" % (
                num, den, *rw, *rc, goal))


if __name__ == "__main__":
    main()
