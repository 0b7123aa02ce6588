/// A block device given as a pool's metadata that is something else — the pool itself, an LVM
/// pool's front device, a thin volume — gets an error naming what it is and what to give
/// instead, rather than "block 0: bad superblock checksum". Nil when `path` is not a
/// device-mapper device, or is plausibly a metadata device.
func metadataPathProblem(_ path: String) -> String? {
    guard let num = BlockDevices.number(of: path), let name = BlockDevices.dmName(of: num),
          let targets = try? DeviceMapper.table(name), let first = targets.first else { return nil }
    let lvmMeta = "\(lvmPoolBase(name))_tmeta"
    let lvmHint = (try? DeviceMapper.info(lvmMeta)) ?? nil != nil
        ? " (LVM: its metadata is /dev/mapper/\(lvmMeta); use --lv VG/LV or --thin-pool VG/POOL, or --dm-pool \(lvmPoolBase(name))-tpool)"
        : ""
    switch first.type {
    case "thin-pool":
        let meta = ThinPoolTable(first).flatMap { BlockDevices.path(of: $0.metadataDevice) }
        return "\(path) is the live thin pool \(name), not its metadata device"
            + (meta.map { " (that is \($0))" } ?? "") + ": use --dm-pool \(name)" + lvmHint
    case "thin":
        return "\(path) is a thin volume (\(name)), not a pool's metadata device: name its pool with --dm-pool NAME or --lv VG/LV" + lvmHint
    default:
        if (try? DeviceMapper.info("\(name)-tpool")) ?? nil != nil {
            return "\(path) is the LVM thin pool \(name), not its metadata device"
                + (lvmHint.isEmpty ? ": use --lv VG/LV, --thin-pool VG/POOL or --dm-pool \(name)-tpool" : lvmHint)
        }
        return nil
    }
}

/// `vg-pool` of `vg-pool-tpool` / `vg-pool`.
private func lvmPoolBase(_ name: String) -> String {
    name.hasSuffix("-tpool") ? String(name.dropLast("-tpool".count)) : name
}
