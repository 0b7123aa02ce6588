#!/usr/bin/env python3
"""pvh-vmlinux.py BZIMAGE OUT: the uncompressed kernel (ELF) inside a bzImage, if it can be
booted directly through its Xen PVH entry note (QEMU's -kernel takes such an ELF).

Under TCG a Debian bzImage spends seconds decompressing itself (xz) and in SeaBIOS before the
kernel's clock starts; booting the ELF through PVH skips both (measured 2026-12-02: 8.6-9.7 s
from qemu start to power-off of a minimal guest, 4.4-4.8 s through PVH). Exit 1 with a reason
when the payload is not xz or gzip, not an ELF, or has no PVH note (then boot the bzImage)."""
import gzip
import lzma
import os
import struct
import sys

XEN_ELFNOTE_PHYS32_ENTRY = 18


def payload(data):
    for magic, dec in ((b"\xfd7zXZ\x00", lambda b: lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(b)),
                       (b"\x1f\x8b\x08", lambda b: gzip.GzipFile(fileobj=__import__("io").BytesIO(b)).read())):
        i = data.find(magic)
        while i >= 0:
            try:
                out = dec(data[i:])
                if out[:4] == b"\x7fELF":
                    return out
            except (lzma.LZMAError, OSError, EOFError):
                pass
            i = data.find(magic, i + 1)
    return None


def has_pvh_note(elf):
    if elf[4] != 2 or elf[5] != 1:          # ELFCLASS64, little-endian
        return False
    phoff, = struct.unpack_from("<Q", elf, 32)
    phentsize, phnum = struct.unpack_from("<HH", elf, 54)
    for k in range(phnum):
        ptype, = struct.unpack_from("<I", elf, phoff + k * phentsize)
        if ptype != 4:                      # PT_NOTE
            continue
        off, = struct.unpack_from("<Q", elf, phoff + k * phentsize + 8)
        size, = struct.unpack_from("<Q", elf, phoff + k * phentsize + 32)
        p, end = off, off + size
        while p + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, p)
            name = elf[p + 12:p + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
                return True
            p += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def main():
    src, out = sys.argv[1], sys.argv[2]
    elf = payload(open(src, "rb").read())
    if elf is None:
        sys.exit(f"{src}: no xz or gzip payload holding an ELF kernel")
    if not has_pvh_note(elf):
        sys.exit(f"{src}: the kernel has no Xen PVH entry note")
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(elf)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
