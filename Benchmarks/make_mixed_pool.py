#!/usr/bin/env python3
"""Builds a pool folder for the send/receive benchmark (deterministic, numpy seed 20261127).

Device 1: SIZE bytes fully mapped to data blocks 0..N-1 of mixed data, chosen per 1 MiB by
i % 10: 0-2 random (30%), 3-6 word text (40%), 7-8 zeros (20%), 9 structured uint32 records (10%).
Device 2: device 1 with CHANGE (default 5%) of its blocks rewritten in clusters of 8-64 blocks,
mapped to new data blocks after N (mixed data too). Metadata by thin_restore; pool.json sizes.
Usage: make_mixed_pool.py DIR [SIZE_GIB=2] [CHANGE=0.05]
"""
import json, os, subprocess, sys
import numpy as np

d = sys.argv[1]
size_gib = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
change = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05
bs = 64 * 1024
n = int(size_gib * (1 << 30)) // bs
rng = np.random.default_rng(20261127)
words = [bytes(rng.integers(97, 123, size=int(k)).astype(np.uint8)) for k in rng.integers(2, 10, size=4000)]
zipf = np.minimum(rng.zipf(1.3, size=1 << 20) - 1, len(words) - 1)
text_pool = b" ".join(words[i] for i in zipf)[: 16 << 20]

def chunk(i):
    k = i % 10
    if k <= 2:
        return rng.integers(0, 256, size=1 << 20, dtype=np.uint8).tobytes()
    if k <= 6:
        off = int(rng.integers(0, len(text_pool) - (1 << 20)))
        return text_pool[off:off + (1 << 20)]
    if k <= 8:
        return bytes(1 << 20)
    rec = np.zeros((1 << 18,), dtype=np.uint32)
    rec[0::4] = np.arange(len(rec[0::4]), dtype=np.uint32) + i * 1000
    rec[1::4] = rng.integers(0, 100, size=len(rec[1::4]), dtype=np.uint32)
    rec[2::4] = 0xCAFE
    return rec.tobytes()

# Clustered changes.
changed = np.zeros(n, dtype=bool)
target = int(n * change)
while changed.sum() < target:
    start = int(rng.integers(0, n))
    length = int(rng.integers(8, 65))
    changed[start:start + length] = True
nchanged = int(changed.sum())
os.makedirs(d, exist_ok=True)
with open(f"{d}/data", "wb") as f:
    for i in range((n * bs + nchanged * bs) // (1 << 20) + 1):
        f.write(chunk(i + (0 if i * 16 < n else 7)))  # new blocks: shifted mix
    f.truncate((n + nchanged) * bs)

def ranges(mapping):
    out, start = [], 0
    for i in range(1, len(mapping) + 1):
        if i == len(mapping) or mapping[i] != mapping[i - 1] + 1:
            out.append((start, int(mapping[start]), i - start))
            start = i
    return out

m1 = np.arange(n, dtype=np.int64)
m2 = m1.copy()
m2[changed] = n + np.arange(nchanged)
xml = [f'<superblock uuid="" time="1" transaction="1" flags="0" version="2" data_block_size="{bs // 512}" nr_data_blocks="{n + nchanged}">']
for dev, m, t in ((1, m1, 0), (2, m2, 1)):
    xml.append(f'  <device dev_id="{dev}" mapped_blocks="{n}" transaction="0" creation_time="{t}" snap_time="{t}">')
    for vb, db, ln in ranges(m):
        xml.append(f'    <range_mapping origin_begin="{vb}" data_begin="{db}" length="{ln}" time="{0 if db < n else 1}"/>')
    xml.append("  </device>")
xml.append("</superblock>")
with open(f"{d}/pool.xml", "w") as f:
    f.write("\n".join(xml) + "\n")
with open(f"{d}/metadata", "wb") as f:
    f.truncate(64 << 20)
subprocess.run(["thin_restore", "-i", f"{d}/pool.xml", "-o", f"{d}/metadata"], check=True, stdout=subprocess.DEVNULL)
json.dump({"version": 1, "devices": {"1": {"size": n * bs}, "2": {"size": n * bs}}}, open(f"{d}/pool.json", "w"))
print(f"{d}: {n} blocks of {bs} bytes ({n * bs / 2**30:.2f} GiB), {nchanged} changed ({100 * nchanged / n:.1f}%)")
