import Delta
import PoolCore

/// A pool opened for receiving: Delta's `ReceivingPool` (what the Replayer writes through) that
/// the job closes when done. `PoolAccess.receiveTarget(readOnly:)` gives one for each kind of pool
/// that can receive: PoolCore's userspace pool (receipts in its pool.json) and a live kernel
/// pool (`KernelReceivingPool`, receipts in the host's state folder).
public protocol ReceiveTarget: ReceivingPool {
    func close()
}

extension ThinPool: ReceiveTarget {}
