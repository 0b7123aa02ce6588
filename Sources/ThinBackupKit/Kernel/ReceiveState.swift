import Delta
import Foundation
import PoolCore

/// What a receive into a kernel pool keeps on the host (the kernel has no place for it):
/// `STATE/pools/dm-POOL/receipts.json`, keyed by thin id. A receipt also names the local device
/// it is about by its creation time (a device deleted and re-created under the same id is
/// another one, and its receipt is ignored) and the local base it was received onto (the chain
/// `--keep N` walks). `inProgress` lists devices a receive created and has not committed yet:
/// the next receive deletes them (a killed run leaves no half version).
struct ReceiveState: HostStateFile, Equatable {
    struct Entry: Codable, Equatable {
        var receipt: Receipt
        /// The local device's creation time when the receipt was recorded.
        var creationTime: UInt32
        /// The local device this one was received onto (a snapshot of it), nil for a full stream.
        var base: UInt64?
    }

    var receipts: [String: Entry] = [:]
    var inProgress: [UInt64] = []

    /// Receipts of devices that exist now with the creation time recorded (`creation`: thin id →
    /// creation time of every device in the pool).
    func valid(_ creation: [UInt64: UInt32]) -> [UInt64: Receipt] {
        var out: [UInt64: Receipt] = [:]
        for (k, e) in receipts {
            guard let dev = UInt64(k), creation[dev] == e.creationTime else { continue }
            out[dev] = e.receipt
        }
        return out
    }

    /// Devices to delete after `newest` was received, keeping `keep` versions of its chain
    /// (newest first, following `base`): only devices this state received, never `newest`.
    func pruned(newest: UInt64, keep: Int) -> [UInt64] {
        var chain: [UInt64] = []
        var seen = Set<UInt64>()
        var at: UInt64? = newest
        while let d = at, receipts[String(d)] != nil, seen.insert(d).inserted {
            chain.append(d)
            at = receipts[String(d)]?.base
        }
        return Array(chain.dropFirst(max(1, keep)))
    }
}
