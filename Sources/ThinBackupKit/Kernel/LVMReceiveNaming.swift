/// Which volume each device of a receive into an LVM thin pool is.
enum LVMReceiveNaming: Equatable {
    /// `receive --lv VG/LV`, `restore --to-lv VG/LV`: one volume, device `volumeDevice`.
    case volume(String)
    /// `--thin-pool VG/POOL` alone (`serve --thin-pool`): device D is the volume `tb-D`.
    case numbered

    /// The device a `.volume` target names.
    static let volumeDevice: UInt64 = 0

    /// The volume name (without the VG) of device `dev`; `vg` for messages.
    func volumeName(_ dev: UInt64, vg: String) throws -> String {
        switch self {
        case .volume(let v):
            guard dev == Self.volumeDevice else {
                throw JobError(.usage, "\(vg)/\(v) is one volume: a device id (--as \(dev)) does not apply")
            }
            return v
        case .numbered: return "tb-\(dev)"
        }
    }

    /// The device a volume name is, if it is one of this target's.
    func device(ofVolume n: String) -> UInt64? {
        switch self {
        case .volume(let v): return n == v ? Self.volumeDevice : nil
        case .numbered:
            guard n.hasPrefix("tb-"), let d = UInt64(n.dropFirst(3)), "tb-\(d)" == n else { return nil }
            return d
        }
    }
}
