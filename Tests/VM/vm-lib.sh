# Sourced by Tests/VM/fixture/fixture.sh and Tests/VM/live/live.sh: the guest's pieces
# (Debian's kernel, busybox, dm tools) fetched from Debian's archive into a cache, an
# initramfs tree filled with host programs and their libraries, and the QEMU accelerator.
#
# Knobs: TB_VM_ROOT (cache + work dirs, default /tmp/tb-vm), TB_VM_KERNEL_PKG (pin the
# kernel package; default: what linux-image-amd64 depends on), TB_VM_ACCEL=kvm|tcg,
# TB_VM_PVH=0 (vm_pvh_kernel: boot the bzImage, not its ELF through PVH).
# Callers define log() and die().

TB_VM_ROOT=${TB_VM_ROOT:-/tmp/tb-vm}
VM_CACHE=$TB_VM_ROOT/cache
VM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# vm_fetch_deb PKG: prints the path of PKG's .deb in the cache (apt-get download if missing).
vm_fetch_deb() {
	local pkg=$1 f
	mkdir -p "$VM_CACHE/debs"
	f=$(ls "$VM_CACHE/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -1 || true)
	if [ -z "$f" ]; then
		log "apt-get download $pkg"
		(cd "$VM_CACHE/debs" && apt-get download -o APT::Sandbox::User=root "$pkg" >&2) || die "download $pkg"
		f=$(ls "$VM_CACHE/debs/${pkg}_"*.deb | sort -V | tail -1)
	fi
	echo "$f"
}

# vm_extract DEB: unpacks DEB once into the cache; prints the directory.
vm_extract() {
	local d
	d=$VM_CACHE/x/$(basename "$1" .deb)
	if [ ! -e "$d/.done" ]; then rm -rf "$d"; mkdir -p "$d"; dpkg-deb -x "$1" "$d"; touch "$d/.done"; fi
	echo "$d"
}

# vm_kernel: sets KPKG KDEB KREL VMLINUZ MODROOT (only vmlinuz and the module folders the
# guest needs are extracted).
vm_kernel() {
	KPKG=${TB_VM_KERNEL_PKG:-$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')}
	[ -n "$KPKG" ] || KPKG=$(ls "$VM_CACHE/debs" 2>/dev/null | sed -n 's/^\(linux-image-[0-9][^_]*\)_.*/\1/p' | sort -V | tail -1)
	[ -n "$KPKG" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
	KDEB=$(vm_fetch_deb "$KPKG")
	local kx=$VM_CACHE/x/$(basename "$KDEB" .deb)
	if [ ! -e "$kx/.done" ]; then
		log "extracting $(basename "$KDEB") (vmlinuz + the module folders needed)"
		rm -rf "$kx"; mkdir -p "$kx"
		dpkg-deb --fsys-tarfile "$KDEB" | tar -x -C "$kx" --wildcards \
			'./boot/vmlinuz-*' './boot/config-*' './lib/modules/*/modules.builtin' \
			'./lib/modules/*/kernel/drivers/md/*' './lib/modules/*/kernel/drivers/block/*' \
			'./lib/modules/*/kernel/drivers/virtio/*' './lib/modules/*/kernel/lib/*' \
			'./lib/modules/*/kernel/crypto/*' './lib/modules/*/kernel/arch/x86/crypto/*'
		touch "$kx/.done"
	fi
	VMLINUZ=$(ls "$kx"/boot/vmlinuz-* | head -1)
	KREL=$(basename "$VMLINUZ" | sed 's/^vmlinuz-//')
	MODROOT=$kx/lib/modules/$KREL
}

# vm_pvh_kernel: sets BOOT_KERNEL, what -kernel boots: the uncompressed kernel out of VMLINUZ
# (after vm_kernel), booted through its PVH entry, which skips the bzImage's decompression and
# the BIOS (about 4 s of every TCG boot); VMLINUZ itself if that cannot be had or TB_VM_PVH=0.
vm_pvh_kernel() {
	BOOT_KERNEL=$VMLINUZ
	[ "${TB_VM_PVH:-1}" != 0 ] || return 0
	local elf=${VMLINUZ%/*}/vmlinux-pvh-$KREL
	if [ ! -s "$elf" ] && ! python3 "$VM_LIB_DIR/pvh-vmlinux.py" "$VMLINUZ" "$elf" 2>"$elf.err"; then
		log "booting the bzImage: $(tail -1 "$elf.err")"
		return 0
	fi
	rm -f "$elf.err"
	BOOT_KERNEL=$elf
}

# vm_root_tree DIR: a fresh initramfs tree with busybox (sets BBDEB BUSYBOX).
vm_root_tree() {
	local r=$1 bbx
	BBDEB=$(vm_fetch_deb busybox-static)
	bbx=$(vm_extract "$BBDEB")
	BUSYBOX=$bbx/bin/busybox
	[ -x "$BUSYBOX" ] || die "busybox not found in $BBDEB"
	mkdir -p "$r"/{bin,sbin,dev,proc,sys,tmp,modules,etc,run,root}
	cp "$BUSYBOX" "$r/bin/busybox"
	ln -s busybox "$r/bin/sh"
	mknod -m 600 "$r/dev/console" c 5 1
	mknod -m 666 "$r/dev/null" c 1 3
}

# vm_copy_libs DIR BINARY [LD_LIBRARY_PATH]: every library ldd lists, and the loader.
vm_copy_libs() {
	local r=$1 bin=$2 lp=${3:-} lib dst
	if LD_LIBRARY_PATH=$lp ldd "$bin" | grep -q 'not found'; then
		die "$bin: $(LD_LIBRARY_PATH=$lp ldd "$bin" | grep 'not found' | head -3)"
	fi
	LD_LIBRARY_PATH=$lp ldd "$bin" | awk '/=>/ {print $3} /^[[:space:]]*\/[^ ]*ld-linux/ {print $1}' | while read -r lib; do
		[ -n "$lib" ] && [ -e "$lib" ] || continue
		dst=$lib
		case "$lib" in "$VM_CACHE"/x/*) dst=/lib/x86_64-linux-gnu/$(basename "$lib") ;; esac
		[ -e "$r$dst" ] && continue
		mkdir -p "$r$(dirname "$dst")"; cp -L "$lib" "$r$dst"
		strip --strip-debug "$r$dst" 2>/dev/null || true
	done
}

# vm_copy_bin DIR BINARY [LD_LIBRARY_PATH]: BINARY into DIR/sbin with its libraries, without
# their debug sections (a debug Swift build and its runtime shrink from ~230 to ~130 MiB).
vm_copy_bin() {
	cp -L "$2" "$1/sbin/$(basename "$2")"
	strip --strip-debug "$1/sbin/$(basename "$2")" 2>/dev/null || true
	vm_copy_libs "$1" "$2" "${3:-}"
}

# vm_modules DIR NAME...: the modules and their dependencies into DIR/modules, in order.
vm_modules() {
	local r=$1 p; shift
	python3 "$VM_LIB_DIR/modules.py" "$MODROOT" "$@" > "$r/modules.paths" || die "kernel modules $*"
	: > "$r/modules.order"
	while read -r p; do cp "$p" "$r/modules/"; basename "$p" >> "$r/modules.order"; done < "$r/modules.paths"
	rm -f "$r/modules.paths"
}

# vm_cpio DIR OUT: the initramfs archive of DIR.
vm_cpio() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc -R 0:0 2>/dev/null) > "$2"
}

# vm_accel: sets ACCEL and CPU. KVM only with a hardware KVM module (a /dev/kvm backed by
# kvm_pvm runs only PVM guest kernels: Debian's hangs); else TCG.
vm_accel() {
	ACCEL=${TB_VM_ACCEL:-}
	if [ -z "$ACCEL" ]; then
		if [ -r /dev/kvm ] && [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
			ACCEL=kvm
		else
			ACCEL=tcg
		fi
	fi
	# IA32_ARCH_CAPABILITIES cannot be set on some nested hosts; the guest does not need it
	if [ "$ACCEL" = kvm ]; then CPU=host,-arch-capabilities; else CPU=max; fi
}

# vm_host_packages PKG...: apt-get install what is missing (CI machines are fresh).
vm_host_packages() {
	local missing=() p
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	[ ${#missing[@]} = 0 ] && return 0
	log "apt-get install ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || die "apt-get install ${missing[*]}"
}
