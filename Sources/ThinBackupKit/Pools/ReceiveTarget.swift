import Delta
import PoolCore

/// A pool opened for receiving: Delta's `ReceivingPool` (what the Replayer writes through) that
/// the job closes when done. `PoolAccess.receiveTarget(readOnly:)` gives one for each kind of pool
/// that can receive: PoolCore's userspace pool (receipts in its pool.json) and a live kernel
/// pool (`KernelReceivingPool`, receipts in the host's state folder).
public protocol ReceiveTarget: ReceivingPool {
    /// The pool's device ids.
    func devices() throws -> [UInt64]
    /// Deletes a device a receive made (restore's intermediate versions), committed.
    func deleteReceived(_ dev: UInt64) throws
    func close()
    /// The device a receive goes to when none is named (an LVM target naming one volume), or nil: the sender's.
    var defaultTarget: UInt64? { get }
    /// How messages name a device ("thin device 7", "vg/data").
    func describe(_ dev: UInt64) -> String
}

extension ReceiveTarget {
    public var defaultTarget: UInt64? { nil }
    public func describe(_ dev: UInt64) -> String { plainDeviceName(dev) }
}

/// How a pool without names of its own calls a device (`describe`'s default).
func plainDeviceName(_ dev: UInt64) -> String { "thin device \(dev)" }

extension ThinPool: ReceiveTarget {
    public func deleteReceived(_ dev: UInt64) throws {
        try delete(dev)
        try commit()
        removeDigestMap(of: dev)
    }
}
