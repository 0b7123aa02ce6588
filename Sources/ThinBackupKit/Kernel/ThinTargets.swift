/// A `thin-pool` target's table: `META DATA BLOCK_SECTORS LOW_WATER [N FEATURE...]`
/// (the kernel names devices as MAJOR:MINOR).
public struct ThinPoolTable: Equatable, Sendable {
    public var metadataDevice: String
    public var dataDevice: String
    public var blockSectors: UInt64
    public var lowWaterMark: UInt64
    public var features: [String]
    public var lengthSectors: UInt64

    public init?(_ t: DMTarget) {
        let f = t.params.split(separator: " ").map(String.init)
        guard t.type == "thin-pool", f.count >= 4, let bs = UInt64(f[2]), let lw = UInt64(f[3]) else { return nil }
        metadataDevice = f[0]
        dataDevice = f[1]
        blockSectors = bs
        lowWaterMark = lw
        var feats: [String] = []
        if f.count > 4, let n = Int(f[4]), n >= 0, f.count >= 5 + n { feats = Array(f[5 ..< 5 + n]) }
        features = feats
        lengthSectors = t.length
    }
}

/// A `thin-pool` target's status line (Documentation/admin-guide/device-mapper/thin-provisioning.rst):
/// `TRANSACTION USED_META/TOTAL_META USED_DATA/TOTAL_DATA HELD_ROOT ro|rw|out_of_data_space
///  [no_]discard_passdown|ignore_discard error|queue_if_no_space needs_check|- LOW_WATERMARK`,
/// or `Fail` / `Error`.
public struct ThinPoolStatus: Equatable, Sendable {
    public enum Mode: String, Sendable { case rw, ro, outOfDataSpace = "out_of_data_space", failed = "Fail", error = "Error" }
    public var transactionID: UInt64 = 0
    public var usedMetadataBlocks: UInt64 = 0
    public var totalMetadataBlocks: UInt64 = 0
    public var usedDataBlocks: UInt64 = 0
    public var totalDataBlocks: UInt64 = 0
    /// The held metadata snapshot's root block, nil when none is held.
    public var heldRoot: UInt64?
    public var mode: Mode
    public var needsCheck = false

    public init?(_ t: DMTarget) {
        guard t.type == "thin-pool" else { return nil }
        let f = t.params.split(separator: " ").map(String.init)
        if f.first == "Fail" { mode = .failed; return }
        if f.first == "Error" { mode = .error; return }
        guard f.count >= 5, let txn = UInt64(f[0]),
              let (um, tm) = Self.pair(f[1]), let (ud, td) = Self.pair(f[2]),
              let mode = Mode(rawValue: f[4]) else { return nil }
        transactionID = txn
        usedMetadataBlocks = um; totalMetadataBlocks = tm
        usedDataBlocks = ud; totalDataBlocks = td
        if f[3] == "-" { heldRoot = nil } else if let r = UInt64(f[3]) { heldRoot = r } else { return nil }
        self.mode = mode
        needsCheck = f.count > 7 && f[7] == "needs_check"
    }

    private static func pair(_ s: String) -> (UInt64, UInt64)? {
        let p = s.split(separator: "/")
        guard p.count == 2, let a = UInt64(p[0]), let b = UInt64(p[1]) else { return nil }
        return (a, b)
    }

    /// Why the pool cannot take a snapshot or a metadata snapshot now, or nil when it can.
    public var refusal: String? {
        switch mode {
        case .failed, .error: return "the pool has failed (status \(mode.rawValue)); see the kernel log"
        case .ro: return needsCheck
            ? "the pool is read-only and needs_check is set: repair it (thin_check/thin_repair, lvconvert --repair) first"
            : "the pool is read-only (metadata error or out of metadata space)"
        case .outOfDataSpace: return "the pool is out of data space: extend its data device (lvextend, or a larger table) first"
        case .rw: return needsCheck ? "the pool has needs_check set: repair it first" : nil
        }
    }
}

/// A `thin` target's table: `POOL_DEV DEV_ID [EXTERNAL_ORIGIN]`.
public struct ThinTable: Equatable, Sendable {
    public var poolDevice: String
    public var deviceID: UInt64
    public var externalOrigin: String?
    public var lengthSectors: UInt64

    public init?(_ t: DMTarget) {
        let f = t.params.split(separator: " ").map(String.init)
        guard t.type == "thin", f.count >= 2, let id = UInt64(f[1]) else { return nil }
        poolDevice = f[0]
        deviceID = id
        externalOrigin = f.count > 2 ? f[2] : nil
        lengthSectors = t.length
    }

    /// The device's size in bytes; nil beyond 8 EiB (a thin device's limit: the sector count times
    /// 512 is checked, never a trap).
    public var sizeBytes: UInt64? {
        let (bytes, over) = lengthSectors.multipliedReportingOverflow(by: 512)
        return over || bytes > 1 << 63 ? nil : bytes
    }
}
