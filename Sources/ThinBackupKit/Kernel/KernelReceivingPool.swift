import Delta
import Foundation
import PoolCore

/// A live kernel dm-thin pool as a receive target (`receive --dm-pool NAME`): the Replayer
/// writes through it as through the userspace pool. Devices are made by dm messages
/// (`create_thin`, `create_snap` of the local base); the device being received is activated for
/// the receive only (`tbr-POOL-DEV`, opened O_DIRECT and O_EXCL) and removed afterwards; zero
/// and discard runs unmap whole receiver blocks (BLKDISCARD, `ZeroingTarget`) and write zeros
/// only on edges that hold data. Mappings are read through the pool's metadata snapshot.
///
/// Atomicity: a device created in the open transaction is deleted by `abortReceive()` (and,
/// after a kill, by the next receive: `ReceiveState.inProgress`); `commitReceive()` flushes the
/// device (dm-thin commits its metadata on a flush) before the receipt is written.
/// A finished version is "armed": a snapshot of it is made and deleted at once, so any later
/// write to it breaks sharing and changes its mappings — a received version written in place
/// would otherwise keep its mapping digest, and be taken as an unchanged base.
final class KernelReceivingPool: ReceiveTarget {
    let pool: KernelThinPool
    let blockSize: Int
    let name: String
    private let statePath: String
    private var lock: RandomAccessFile?
    private var metadata: FileMetadataDevice?
    private var active: [UInt64: (name: String, file: RandomAccessFile, zeroing: ZeroingTarget)] = [:]
    private var createdNow: [UInt64] = []
    private var pending: [UInt64: Receipt?] = [:]
    private var bases: [UInt64: UInt64] = [:]
    /// Versions of a chain to keep after a receive (nil: all).
    var keep: Int?
    /// Devices deleted by `keep` in the last commit.
    private(set) var pruned: [UInt64] = []
    /// Sizes of inactive devices known to the caller (an LVM pool's volumes: `lvs` says them),
    /// used before the host's record.
    var knownSizes: [UInt64: UInt64] = [:]

    /// `readOnly`: only receipts are read (a resume token, serve's status); otherwise the pool's
    /// receive lock is taken (exit 75 while another receive runs) and what a killed receive left is removed.
    init(_ pool: KernelThinPool, readOnly: Bool) throws {
        self.pool = pool
        blockSize = pool.blockSize
        name = "dm pool \(pool.dmName)"
        let dir = try KernelPoolState.directory(for: "dm-\(pool.dmName)")
        statePath = dir + "/receipts.json"
        guard !readOnly else { return }
        let l = try RandomAccessFile(path: dir + "/receive.lock", writable: true, create: true)
        guard l.tryLock(exclusive: true) else {
            l.close()
            throw JobError(.busy, "\(name): another receive into this pool is running")
        }
        lock = l
        do {
            try pool.requireWritable()
            try removeInterrupted()
        } catch {
            close()
            throw error
        }
    }

    func accept(streamBlockSize: Int) throws {
        guard streamBlockSize != blockSize, streamBlockSize % blockSize != 0, pool.table.features.contains("skip_block_zeroing") else { return }
        throw ReplayError.blockSizeMismatch(stream: UInt32(streamBlockSize), pool: blockSize)
    }

    // MARK: metadata, through the pool's metadata snapshot

    private func withView<T>(_ body: (MetadataView) throws -> T) throws -> T {
        let release = try MetadataSnapLease.reserve(pool)
        defer { try? release() }
        if metadata == nil { metadata = try FileMetadataDevice(path: pool.metadataPath) }
        return try body(try MetadataReader(source: metadata!).metadataSnapshot())
    }

    /// Creation time of every device in the pool.
    private func creationTimes() throws -> [UInt64: UInt32] {
        try withView { v in
            var out: [UInt64: UInt32] = [:]
            for d in try v.devices() { out[d.id] = try v.details(of: d.id).creationTime }
            return out
        }
    }

    func deviceExists(_ dev: UInt64) throws -> Bool { try creationTimes()[dev] != nil }

    func devices() throws -> [UInt64] { try creationTimes().keys.sorted() }

    func deleteReceived(_ dev: UInt64) throws {
        var s = try ReceiveState.load(statePath)
        try removeVersion(dev, &s, force: true)
        try s.store(statePath)
    }

    /// The device's creation time and every (virtual block, data block, time) of its mapping.
    /// Neither the snapshot time (arming changes it) nor the transaction id (LVM changes it) is in.
    func mappingDigest(of dev: UInt64) throws -> Digest128 {
        try flush(dev)
        return try withView { v in
            let d = try v.details(of: dev)
            var hi = d.mappedBlocks &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(d.creationTime) << 32
            var lo: UInt64 = 0
            try v.forEachMapping(of: dev) { vb, m in
                var z = (vb &* 0xBF58_476D_1CE4_E5B9) ^ m.raw
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                hi &+= z ^ (z >> 31)
                lo = (lo ^ z) &* 0x100_0000_01B3 &+ vb
            }
            return Digest128(high: hi, low: lo)
        }
    }

    func contentDigest(of dev: UInt64, blockSize bs: Int) throws -> Digest128 {
        try flush(dev)
        let mapped: [UInt64] = try withView { v in
            var m: [UInt64] = []
            try v.forEachMapping(of: dev) { vb, _ in m.append(vb) }
            return m
        }
        return try contentDigest(of: dev, blockSize: bs, blocks: streamRuns(mapped: mapped, poolBlockSize: blockSize, streamBlockSize: bs))
    }

    // MARK: devices

    func createThin(_ dev: UInt64, virtualSize: UInt64) throws {
        try checkNew(dev, virtualSize)
        try markInProgress(dev)
        try pool.createThin(dev)
        createdNow.append(dev)
        KernelPoolState.recordSize(pool: pool.dmName, dev: dev, size: virtualSize)
    }

    func createSnapshot(_ dev: UInt64, of origin: UInt64, virtualSize: UInt64) throws {
        try checkNew(dev, virtualSize)
        try markInProgress(dev)
        try pool.createSnapshot(of: origin, as: dev)
        createdNow.append(dev)
        bases[dev] = origin
        KernelPoolState.recordSize(pool: pool.dmName, dev: dev, size: virtualSize)
    }

    private func checkNew(_ dev: UInt64, _ size: UInt64) throws {
        guard dev < 1 << 24 else { throw JobError("\(name): thin device ids are below 2^24 (16777216), got \(dev)") }
        guard size > 0, size % 512 == 0 else {
            throw JobError("\(name): the stream's device size \(size) is not whole 512-byte sectors; a kernel thin device cannot hold it")
        }
        let st = try pool.status()
        let need = (size + UInt64(blockSize) - 1) / UInt64(blockSize)
        if st.totalDataBlocks > 0, need > st.totalDataBlocks {
            // Thin devices may be larger than their pool; only say so plainly when nothing could fit.
            ThinBackupMain.writeStderr("thin-backup: warning: \(name): the stream's device (\(size) bytes) is larger than the pool's data space "
                + "(\(st.totalDataBlocks) blocks of \(blockSize) bytes)\n")
        }
    }

    func virtualSize(of dev: UInt64) throws -> UInt64 {
        if let s = try pool.activeSize(of: dev) ?? knownSizes[dev] ?? KernelPoolState.size(pool: pool.dmName, dev: dev) { return s }
        throw JobError("\(name): the size of thin device \(dev) is not known (not active, not received here)")
    }

    /// The device activated for this receive (`tbr-POOL-DEV`).
    private func device(_ dev: UInt64) throws -> (name: String, file: RandomAccessFile, zeroing: ZeroingTarget) {
        if let d = active[dev] { return d }
        let size = try virtualSize(of: dev)
        let dmName = Self.activationName(pool.dmName, dev)
        if let a = try pool.activeThins()[dev], let other = a.first(where: { $0.name != dmName }) {
            throw JobError("\(name): thin device \(dev) is active as \(other.name): it is in use, not writing it")
        }
        try DeviceMapper.removeIfPresent(dmName)
        try DeviceMapper.create(dmName, DMTarget(start: 0, length: size / 512, type: "thin", params: "\(pool.number) \(dev)"))
        do {
            let file = try RandomAccessFile(path: "/dev/mapper/\(dmName)", writable: true)
            let d = (dmName, file, ZeroingTarget(file))
            active[dev] = d
            return d
        } catch {
            try? DeviceMapper.remove(dmName)
            throw error
        }
    }

    /// `tbr-DEV-POOL`, the pool's name cut so the whole fits device-mapper's 127 characters.
    static func activationName(_ pool: String, _ dev: UInt64) -> String {
        let head = "tbr-\(dev)-"
        return head + pool.prefix(127 - head.count)
    }

    func write(_ dev: UInt64, offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws {
        do { try device(dev).file.write(bytes, at: offset) } catch { throw writeFailure(dev, error) }
    }

    func read(_ dev: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let got = try device(dev).file.read(into: buffer, at: offset)
        guard got == buffer.count else { throw JobError("\(name): thin device \(dev): short read at \(offset)") }
    }

    /// Whole receiver blocks discarded (and read back: what does not read zeros is written), edges zeroed.
    func discard(_ dev: UInt64, bytes: Range<UInt64>) throws {
        let bs = UInt64(blockSize)
        try zeroEdges(dev, bytes) { blocks in
            do {
                try device(dev).zeroing.zero(offset: blocks.lowerBound * bs, length: UInt64(blocks.count) * bs)
            } catch { throw writeFailure(dev, error) }
        }
    }

    /// A failed write names the pool's state when it ran out of space.
    private func writeFailure(_ dev: UInt64, _ error: Error) -> Error {
        if let st = try? pool.status(), let why = st.refusal {
            return JobError("\(name): writing thin device \(dev) failed: \(why) (\(error))", cause: error)
        }
        return error
    }

    func flush(_ dev: UInt64) throws {
        if let d = active[dev] { try d.file.sync() }
    }

    /// Closes and removes the activation this receive made of `dev`, if any.
    func deactivate(_ dev: UInt64) {
        if let d = active.removeValue(forKey: dev) {
            d.file.close()
            try? DeviceMapper.remove(d.name)
        }
    }

    /// Deactivates what this receive activated and releases the receive lock.
    func close() {
        for dev in active.keys { deactivate(dev) }
        metadata?.file.close()
        metadata = nil
        lock?.close()
        lock = nil
    }

    // MARK: receipts and transactions

    private func markInProgress(_ dev: UInt64) throws {
        var s = try ReceiveState.load(statePath)
        if !s.inProgress.contains(dev) { s.inProgress.append(dev) }
        try s.store(statePath)
    }

    /// Deletes devices a killed receive created and never committed (no receipt names them).
    private func removeInterrupted() throws {
        var s = try ReceiveState.load(statePath)
        guard !s.inProgress.isEmpty else { return }
        let times = try creationTimes()
        for dev in s.inProgress where s.valid(times)[dev] == nil {
            try DeviceMapper.removeIfPresent(Self.activationName(pool.dmName, dev))
            if times[dev] != nil { try pool.delete(dev) }
            KernelPoolState.forgetSize(pool: pool.dmName, dev: dev)
            ThinBackupMain.writeStderr("thin-backup: warning: \(name): removed thin device \(dev), left half received by an interrupted receive\n")
        }
        s.inProgress = []
        try s.store(statePath)
    }

    func receipts() throws -> [UInt64: Receipt] {
        var out = try ReceiveState.load(statePath).valid(creationTimes())
        for (dev, r) in pending { out[dev] = r }
        return out.compactMapValues { $0 }
    }

    func setReceipt(_ receipt: Receipt?, for dev: UInt64) throws { pending[dev] = receipt }

    func commitReceive() throws {
        for dev in active.keys { try flush(dev) }
        for (dev, r) in pending where r != nil && r!.partial == nil { try arm(dev) }
        var s = try ReceiveState.load(statePath)
        let times = try creationTimes()
        var finished: [UInt64] = []
        for (dev, r) in pending {
            guard let r else { s.receipts[String(dev)] = nil; continue }
            guard let t = times[dev] else { throw JobError("\(name): thin device \(dev) vanished during the receive") }
            s.receipts[String(dev)] = ReceiveState.Entry(receipt: r, creationTime: t, base: bases[dev] ?? s.receipts[String(dev)]?.base)
            if r.partial == nil { finished.append(dev) }
        }
        s.inProgress.removeAll { s.receipts[String($0)] != nil }
        try s.store(statePath)
        pending = [:]
        createdNow = []
        pruned = []
        if let keep {
            for newest in finished {
                for old in s.pruned(newest: newest, keep: keep) { try removeVersion(old, &s) }
            }
            try s.store(statePath)
        }
    }

    /// A snapshot made and deleted at once: every block of `dev` is then shared as far as the
    /// kernel knows, so a later write to it changes its mappings. The snapshot takes the highest
    /// free thin id (an LVM pool's `LVMReceivingPool` relies on that: LVM never gets near it).
    func arm(_ dev: UInt64) throws {
        let ids = try creationTimes()
        guard let spare = (1..<(1 << 24)).reversed().first(where: { ids[UInt64($0)] == nil }).map(UInt64.init) else { return }
        deactivate(dev)
        try pool.createSnapshot(of: dev, as: spare)
        try pool.delete(spare)
    }

    private func removeVersion(_ dev: UInt64, _ s: inout ReceiveState, force: Bool = false) throws {
        deactivate(dev)
        if !force, let a = try pool.activeThins()[dev] {
            ThinBackupMain.writeStderr("thin-backup: warning: \(name): not removing old version \(dev): it is active (\(a.map(\.name).joined(separator: ", ")))\n")
            return
        }
        try pool.delete(dev)
        KernelPoolState.forgetSize(pool: pool.dmName, dev: dev)
        s.receipts[String(dev)] = nil
        pruned.append(dev)
    }

    func abortReceive() throws {
        pending = [:]
        var s = try ReceiveState.load(statePath)
        for dev in createdNow {
            deactivate(dev)
            try pool.delete(dev)
            KernelPoolState.forgetSize(pool: pool.dmName, dev: dev)
            s.inProgress.removeAll { $0 == dev }
        }
        try s.store(statePath)
        createdNow = []
    }
}
