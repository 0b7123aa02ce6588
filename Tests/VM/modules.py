#!/usr/bin/env python3
"""modules.py ROOT NAME...: the insmod order (dependencies first) of kernel modules
from an extracted Debian kernel's lib/modules/RELEASE, one .ko path a line."""
import os
import re
import sys
from types import SimpleNamespace


def cmd_modules(a):
    root = a.root
    byname = {}
    for dp, _dn, fns in os.walk(os.path.join(root, "kernel")):
        for fn in fns:
            if fn.endswith(".ko"):
                byname[fn[:-3].replace("-", "_")] = os.path.join(dp, fn)
    builtin = set()
    bpath = os.path.join(root, "modules.builtin")
    if os.path.exists(bpath):
        for line in open(bpath):
            builtin.add(os.path.basename(line.strip())[:-3].replace("-", "_"))
    aliases = {"crc32c": ["crc32c_generic", "crc32c_intel"]}   # softdep pre: crc32c
    order, seen = [], set()

    def deps_of(path):
        data = open(path, "rb").read()
        deps, soft = [], []
        for mm in re.finditer(rb"(?:^|\x00)(depends|softdep)=([^\x00]*)", data):
            val = mm.group(2).decode()
            if mm.group(1) == b"depends":
                deps += [x for x in val.split(",") if x]
            else:
                for part in val.split():
                    if part not in ("pre:", "post:"):
                        soft.append(part)
        return deps, soft

    def visit(name, optional=False):
        n = name.replace("-", "_")
        if n in seen:
            return
        seen.add(n)
        if n in aliases:
            for x in aliases[n]:
                visit(x, optional=True)
            return
        if n not in byname:
            if n in builtin or optional:
                return
            sys.exit(f"module {name} not found (and not built in)")
        deps, soft = deps_of(byname[n])
        for x in soft:
            visit(x, optional=True)
        for x in deps:
            visit(x)
        order.append(byname[n])

    for w in a.want:
        visit(w)
    for p in order:
        print(p)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: modules.py MODULES_ROOT NAME...")
    cmd_modules(SimpleNamespace(root=sys.argv[1], want=sys.argv[2:]))
