#!/usr/bin/env python3
"""Paired runs of commands that write into a pool, each from the same pool state.

    Benchmarks/fresh-pool-pairs.py POOL PRISTINE N name=CMD name=CMD ...

Before every run, POOL's `metadata` and `pool.json` are copied back from the folder PRISTINE (a copy
taken once, e.g. right after the full receive), `POOL/../dd.out` and `POOL/../restored.img` are
removed and the file systems synced: all outside the timing. Commands run in turn (A B C, then
C B A, ...), after one unrecorded round; wall by the monotonic clock, CPU (user + sys) and peak RSS by
wait4. Prints medians, and for every command after the first the median of its per-round ratios to
the first. Used for docs/BENCHMARKS.md "Incremental receive, third pass": unlike a `pool delete`
in each run (90 ms timed beside a 60 ms receive) or a new device id each run (the deleted devices'
receipts pile up in pool.json), every run starts from the same files. Peak RSS reads at least the
Python parent's (about 14 MiB: each command is forked from it).
"""
import os, shutil, subprocess, sys, time, statistics as st

pool, pristine, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cmds = [a.split('=', 1) for a in sys.argv[4:]]
res = {k: [] for k, _ in cmds}
parent = os.path.dirname(os.path.abspath(pool))


def prep():
    for f in ('metadata', 'pool.json'):
        shutil.copyfile(os.path.join(pristine, f), os.path.join(pool, f))
    for f in ('dd.out', 'restored.img'):
        if os.path.exists(os.path.join(parent, f)):
            os.remove(os.path.join(parent, f))
    os.sync()


for i in range(n + 1):
    for k, c in (cmds if i % 2 == 0 else cmds[::-1]):
        prep()
        t = time.monotonic()
        p = subprocess.Popen(c, shell=True)
        _, status, ru = os.wait4(p.pid, 0)
        w = time.monotonic() - t
        if status != 0:
            sys.exit(f'{k} failed (status {status})')
        if i > 0:
            res[k].append((w, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024))
base = cmds[0][0]
for k, _ in cmds:
    w = [x[0] for x in res[k]]
    c = [x[1] for x in res[k]]
    m = [x[2] for x in res[k]]
    line = (f'{k:6} wall med {st.median(w)*1000:6.1f} ms (min {min(w)*1000:5.1f} max {max(w)*1000:6.1f})'
            f'  cpu med {st.median(c)*1000:6.1f} ms  peak med {st.median(m):5.1f} MiB')
    if k != base:
        rw = [a[0] / b[0] for a, b in zip(res[k], res[base])]
        rc = [a[1] / b[1] for a, b in zip(res[k], res[base])]
        line += f'  | {k}/{base} wall med {st.median(rw):.3f} ({min(rw):.2f}-{max(rw):.2f}) cpu med {st.median(rc):.3f}'
    print(line)
