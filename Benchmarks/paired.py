#!/usr/bin/env python3
"""Times two commands in turn (A B A B …) and appends one JSON line of medians and ratios to a file.

Usage: paired.py OUT.jsonl NAME GOAL RUNS 'A' 'B' [--setup-a CMD] [--cleanup-a CMD] [--setup-b CMD] [--cleanup-b CMD]

A command with shell syntax (| > < ; & $) runs under `bash -c`; otherwise it is executed directly
(a start-up measurement then has no shell in it). Each run's wall time comes from a monotonic clock,
its CPU time (user + sys) and peak RSS from wait4 (which includes every child the command waited
for). Setup and cleanup commands run before and after each run, untimed. The ratios are B/A per pair
(above 1: A is faster), and their median is printed: a pair runs close in time, so the ratio
holds when the machine's speed drifts (other jobs on a shared machine).
"""
import json, os, shlex, statistics, subprocess, sys, time

def parse(argv):
    out, name, goal, runs, a, b = argv[:6]
    opts = {}
    rest = argv[6:]
    while rest:
        opts[rest[0].lstrip("-")] = rest[1]
        rest = rest[2:]
    return out, name, goal, int(runs), a, b, opts

def argv_of(cmd):
    if any(c in cmd for c in "|><;&$"):
        return ["bash", "-c", cmd]
    return shlex.split(cmd)

def sh(cmd):
    if cmd:
        subprocess.run(["bash", "-c", cmd], check=True)

def once(cmd):
    t0 = time.monotonic()
    pid = os.posix_spawnp(argv_of(cmd)[0], argv_of(cmd), os.environ,
                          file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"paired.py: '{cmd}' failed with status {os.waitstatus_to_exitcode(status)}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024

def main():
    out, name, goal, runs, a, b, o = parse(sys.argv[1:])
    res = {"A": [], "B": []}
    for i in range(runs + 1):  # the first pair warms the caches and is not counted
        for side, cmd in (("A", a), ("B", b)):
            sh(o.get(f"setup-{side.lower()}"))
            r = once(cmd)
            sh(o.get(f"cleanup-{side.lower()}"))
            if i > 0:
                res[side].append(r)
    med = lambda side, k: statistics.median(x[k] for x in res[side])
    ratio = lambda k: statistics.median(bb[k] / max(aa[k], 1e-6) for aa, bb in zip(res["A"], res["B"]))
    row = {"name": name, "goal": goal, "runs": runs, "a": a, "b": b,
           "wallA": med("A", 0), "wallB": med("B", 0), "cpuA": med("A", 1), "cpuB": med("B", 1),
           "rssA": max(x[2] for x in res["A"]), "rssB": max(x[2] for x in res["B"]),
           "wallRatio": ratio(0), "cpuRatio": ratio(1),
           "wallMin": min(bb[0] / max(aa[0], 1e-6) for aa, bb in zip(res["A"], res["B"])),
           "wallMax": max(bb[0] / max(aa[0], 1e-6) for aa, bb in zip(res["A"], res["B"]))}
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")

main()
