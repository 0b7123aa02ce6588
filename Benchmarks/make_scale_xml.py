#!/usr/bin/env python3
"""thin_dump-style XML of a large pool for Benchmarks/scale.sh (fed to thin_restore).

Device 1 maps MAPPED blocks in runs (lengths 1..2*RUN-1, average RUN) at virtual offsets
with gaps, their data blocks scattered over the whole data device so that every part of the
data space map is used. Device 2 is a copy of device 1 (the same data blocks, count 2) in
which CHANGED blocks, in runs, map to fresh data blocks with time 1: what a snapshot taken
at time 1 and then written looks like, without sharing tree nodes.

Usage: make_scale_xml.py DATA_BLOCKS MAPPED CHANGED [SEED] > pool.xml
"""
import random
import sys


def main():
    data_blocks, mapped, changed = (int(a) for a in sys.argv[1:4])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    if mapped + changed > data_blocks:
        sys.exit("more mapped blocks than data blocks")
    rng = random.Random(seed)
    run = 128
    # Runs of device 1: (virtual start, length).
    runs = []
    v = 0
    left = mapped
    while left > 0:
        n = min(left, rng.randint(1, 2 * run - 1))
        v += rng.randint(0, 64)
        runs.append((v, n))
        v += n
        left -= n
    virtual_blocks = v + 64
    # Data placement: data space cut into as many equal slots as runs, each run placed at a
    # random offset inside its own slot (so runs never overlap), slots in a shuffled order.
    nslots = len(runs)
    slot = (data_blocks - changed) // nslots
    if slot < 2 * run:
        sys.exit("data device too small for this layout")
    order = list(range(nslots))
    rng.shuffle(order)
    data_of = []
    for i, (_, n) in enumerate(runs):
        data_of.append(order[i] * slot + rng.randint(0, slot - n))
    # Changed blocks of device 2: runs picked among device 1's runs, remapped to the tail of the data device.
    fresh = data_blocks - changed
    change = {}
    left = changed
    while left > 0:
        i = rng.randrange(nslots)
        if i in change:
            continue
        vs, n = runs[i]
        k = min(left, n, rng.randint(1, 32))
        off = rng.randint(0, n - k)
        change[i] = (off, k, fresh)
        fresh += k
        left -= k

    out = sys.stdout
    w = out.write
    w('<superblock uuid="" time="1" transaction="1" flags="0" version="2" data_block_size="128" nr_data_blocks="%d">\n' % data_blocks)

    def device(dev, mapped_blocks, creation, snap, entries):
        w('  <device dev_id="%d" mapped_blocks="%d" transaction="0" creation_time="%d" snap_time="%d">\n'
          % (dev, mapped_blocks, creation, snap))
        for (vb, db, n, t) in entries:
            if n == 1:
                w('    <single_mapping origin_block="%d" data_block="%d" time="%d"/>\n' % (vb, db, t))
            else:
                w('    <range_mapping origin_begin="%d" data_begin="%d" length="%d" time="%d"/>\n' % (vb, db, n, t))
        w('  </device>\n')

    def dev1():
        for i, (vb, n) in enumerate(runs):
            yield (vb, data_of[i], n, 0)

    def dev2():
        for i, (vb, n) in enumerate(runs):
            db = data_of[i]
            if i not in change:
                yield (vb, db, n, 0)
                continue
            off, k, f = change[i]
            if off:
                yield (vb, db, off, 0)
            yield (vb + off, f, k, 1)
            if off + k < n:
                yield (vb + off + k, db + off + k, n - off - k, 0)

    device(1, mapped, 0, 1, dev1())
    device(2, mapped, 1, 1, dev2())
    w('</superblock>\n')
    sys.stderr.write("virtual_blocks=%d runs=%d\n" % (virtual_blocks, len(runs)))


main()
