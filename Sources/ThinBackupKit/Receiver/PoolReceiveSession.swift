import Delta
import Foundation
import PoolCore

/// One receive of `serve` into a pool that other receives use at the same time: the receiving
/// pool the replay writes to.
///
/// Until it commits, a receive changes nothing in the pool: it stages the device it creates,
/// its discards, and its written blocks — whose data it writes straight into data blocks set
/// aside for it (outside the pool's lock, in parallel with the others). A checkpoint or the end
/// takes the pool's lock, applies what was staged to the pool's transaction (create, discards,
/// maps), records the receipt and commits — the receipt atomic with its commit as in `receive`
/// — and releases the lock. Reads see the staged state over the committed one.
final class PoolReceiveSession: ReceiveTarget {
    let shared: SharedReceivingPool
    let blockSize: Int
    private let data: RandomAccessFile

    private enum Creation {
        case thin(size: UInt64)
        case snapshot(of: UInt64, size: UInt64)
    }
    /// The device this receive writes (set by the first create or write).
    private var target: UInt64?
    private var creation: Creation?
    /// Virtual block → the set-aside data block holding its new bytes.
    private var written: [UInt64: UInt64] = [:]
    /// Ranges unmapped since the last commit (applied before `written`, which is newer).
    private var discarded: [Range<UInt64>] = []
    /// Set-aside blocks not in use (given back by an overwrite or a discard, or not used yet).
    private var spare: [UInt64] = []
    /// The pool while this receive holds its lock (in its transaction).
    private var held: ThinPool?

    init(shared: SharedReceivingPool) {
        self.shared = shared
        blockSize = shared.blockSize
        data = shared.dataFile!
    }

    // MARK: the lock

    /// Runs `body` under the lock (already held in a transaction: directly).
    private func withPool<T>(_ body: (ThinPool) throws -> T) throws -> T {
        if let held { return try body(held) }
        let pool = shared.acquire()
        defer { shared.relinquish() }
        return try body(pool)
    }

    /// Takes the lock (kept until commit or abort) and applies what was staged.
    @discardableResult
    private func enter() throws -> ThinPool {
        let pool = held ?? shared.acquire()
        held = pool
        guard let dev = target else { return pool }
        switch creation {
        case .thin(let size)?: try pool.createThin(dev, virtualSize: size)
        case .snapshot(let origin, let size)?: try pool.createSnapshot(dev, of: origin, virtualSize: size)
        case nil: break
        }
        creation = nil
        for r in discarded { try pool.discard(dev, blocks: r) }
        discarded = []
        for (v, d) in written.sorted(by: { $0.key < $1.key }) {
            try pool.mapWritten(dev, v, dataBlock: d)
            written[v] = nil
            shared.release(pool, [d], punch: false)  // the pool's transaction has it now
        }
        return pool
    }

    private func leave() {
        guard held != nil else { return }
        held = nil
        shared.relinquish()
    }

    /// Gives every set-aside block back (punched) and forgets what was staged. Run at the end of
    /// the receive, whatever happened.
    func close() {
        let pool = held ?? shared.acquire()
        shared.release(pool, spare + Array(written.values), punch: true)
        spare = []
        written = [:]
        discarded = []
        creation = nil
        held = pool
        leave()
    }

    // MARK: ReceivingPool

    func deviceExists(_ dev: UInt64) throws -> Bool {
        if dev == target, creation != nil { return true }
        return try withPool { try $0.deviceExists(dev) }
    }

    private func claim(_ dev: UInt64) throws {
        guard target == nil || target == dev else {
            throw PoolError.invalid("a receive writes one device (\(target!)), not \(dev)")
        }
        target = dev
    }

    func createThin(_ dev: UInt64, virtualSize: UInt64) throws {
        try ThinPool.validateVirtualSize(virtualSize)
        guard try !deviceExists(dev) else { throw PoolError.invalid("thin device \(dev) exists") }
        try claim(dev)
        creation = .thin(size: virtualSize)
    }

    func createSnapshot(_ dev: UInt64, of origin: UInt64, virtualSize: UInt64) throws {
        try ThinPool.validateVirtualSize(virtualSize)
        guard try !deviceExists(dev) else { throw PoolError.invalid("thin device \(dev) exists") }
        guard try deviceExists(origin) else { throw PoolError.unknownDevice(origin) }
        try claim(dev)
        creation = .snapshot(of: origin, size: virtualSize)
    }

    func virtualSize(of dev: UInt64) throws -> UInt64 {
        if dev == target {
            switch creation {
            case .thin(let size)?, .snapshot(_, let size)?: return size
            case nil: break
            }
        }
        return try withPool { try $0.virtualSize(of: dev) }
    }

    func write(_ dev: UInt64, offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws {
        try claim(dev)
        let size = try virtualSize(of: dev)
        guard offset <= size, UInt64(bytes.count) <= size - offset else {
            throw PoolError.beyondEnd(dev: dev, offset: offset.saturatingAdd(UInt64(bytes.count)), size: size)
        }
        let bs = UInt64(blockSize)
        var at = 0
        while at < bytes.count {
            let pos = offset + UInt64(at)
            let v = pos / bs, inBlock = Int(pos % bs)
            if inBlock == 0, bytes.count - at >= blockSize {
                let n = (bytes.count - at) / blockSize
                try writeWhole(v, UnsafeRawBufferPointer(rebasing: bytes[at..<at + n * blockSize]))
                at += n * blockSize
            } else {
                let n = min(blockSize - inBlock, bytes.count - at)
                try writePart(dev, v, inBlock, UnsafeRawBufferPointer(rebasing: bytes[at..<at + n]), size: size)
                at += n
            }
        }
    }

    /// Whole blocks from virtual block `first`: written into set-aside blocks, runs with one call.
    private func writeWhole(_ first: UInt64, _ bytes: UnsafeRawBufferPointer) throws {
        let bs = blockSize, n = bytes.count / bs
        try takeSpare(n)
        let blocks = Array(spare.prefix(n))
        spare.removeFirst(n)
        var i = 0
        while i < n {
            var j = i
            while j + 1 < n && blocks[j + 1] == blocks[j] + 1 { j += 1 }
            do {
                try data.write(UnsafeRawBufferPointer(rebasing: bytes[i * bs..<(j + 1) * bs]), at: blocks[i] * UInt64(bs))
            } catch {
                spare += blocks  // given back (punched) with the others at the end
                throw error
            }
            i = j + 1
        }
        for k in 0..<n {
            if let old = written.updateValue(blocks[k], forKey: first + UInt64(k)) { spare.append(old) }
        }
    }

    /// Part of block `v`: in place when this receive wrote the block already, else the block's
    /// current bytes with the part over them go to a set-aside block.
    private func writePart(_ dev: UInt64, _ v: UInt64, _ inBlock: Int, _ part: UnsafeRawBufferPointer, size: UInt64) throws {
        let bs = UInt64(blockSize)
        if let d = written[v] {
            try data.write(part, at: d * bs + UInt64(inBlock))
            return
        }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: blockSize, alignment: 4096)
        defer { buf.deallocate() }
        buf.initializeMemory(as: UInt8.self, repeating: 0)
        let have = Int(min(bs, size - v * bs))
        try read(dev, offset: v * bs, into: UnsafeMutableRawBufferPointer(rebasing: buf[0..<have]))
        UnsafeMutableRawBufferPointer(rebasing: buf[inBlock..<inBlock + part.count]).copyMemory(from: part)
        try writeWhole(v, UnsafeRawBufferPointer(buf))
    }

    /// Makes `spare` hold at least `n` blocks (sets more aside, a batch at a time, under the lock).
    private func takeSpare(_ n: Int) throws {
        guard spare.count < n else { return }
        let want = n - spare.count
        let got = try withPool { pool in try shared.setAsideBlocks(pool, upTo: max(want, 16)) }
        spare.append(contentsOf: got)
        guard spare.count >= n else { throw PoolError.outOfDataSpace }
    }

    func read(_ dev: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let bs = UInt64(blockSize)
        var at = 0
        while at < buffer.count {
            let pos = offset + UInt64(at)
            let v = pos / bs, inBlock = pos % bs
            let n = min(Int(bs - inBlock), buffer.count - at)
            let dst = UnsafeMutableRawBufferPointer(rebasing: buffer[at..<at + n])
            at += n
            if dev == target, let d = written[v] {
                _ = try data.read(into: dst, at: d * bs + inBlock)
                continue
            }
            var source: UInt64? = dev
            if dev == target {
                if discarded.contains(where: { $0.contains(v) }) { source = nil }
                switch creation {
                case .thin?: source = nil
                case .snapshot(let origin, _)?: source = source.map { _ in origin }
                case nil: break
                }
            }
            guard let from = source else {
                dst.initializeMemory(as: UInt8.self, repeating: 0)
                continue
            }
            // Committed blocks of this device (or of its origin) change only by this receive.
            let mapped = try withPool { pool -> BlockTime?? in
                if pool.originFile(of: from) != nil {
                    try pool.read(from, offset: pos, into: dst)
                    return .none
                }
                return .some(try pool.lookup(from, v))
            }
            switch mapped {
            case .none: break
            case .some(nil): dst.initializeMemory(as: UInt8.self, repeating: 0)
            case .some(let m?): _ = try data.read(into: dst, at: m.dataBlock * bs + inBlock)
            }
        }
    }

    /// Whole receiver blocks unmapped, partial ones written with zeros.
    func discard(_ dev: UInt64, bytes: Range<UInt64>) throws {
        try claim(dev)
        try zeroEdges(dev, bytes) { try discardBlocks($0) }
    }

    private func discardBlocks(_ range: Range<UInt64>) throws {
        guard !range.isEmpty else { return }
        if UInt64(written.count) < range.count {
            for (v, d) in written where range.contains(v) {
                written[v] = nil
                spare.append(d)
            }
        } else {
            for v in range { if let d = written.removeValue(forKey: v) { spare.append(d) } }
        }
        if let last = discarded.last, last.upperBound >= range.lowerBound, range.upperBound >= last.lowerBound {
            discarded[discarded.count - 1] = min(last.lowerBound, range.lowerBound)..<max(last.upperBound, range.upperBound)
        } else {
            discarded.append(range)
        }
    }

    func mappingDigest(of dev: UInt64) throws -> Digest128 {
        if dev == target { return try enter().mappingDigest(of: dev) }
        return try withPool { try $0.mappingDigest(of: dev) }
    }

    /// The final check of a resumed receive: computed in its transaction (the lock held while it reads).
    func contentDigest(of dev: UInt64, blockSize bs: Int) throws -> Digest128 {
        if dev == target { return try enter().contentDigest(of: dev, blockSize: bs) }
        return try withPool { try $0.contentDigest(of: dev, blockSize: bs) }
    }

    func devices() throws -> [UInt64] {
        let committed = try withPool { try $0.devices() }
        guard let dev = target, creation != nil else { return committed }
        return (committed + [dev]).sorted()
    }

    func deleteReceived(_ dev: UInt64) throws {
        throw PoolError.invalid("a receive into a shared pool does not delete devices (thin device \(dev))")
    }

    func receipts() throws -> [UInt64: Receipt] { try withPool { try $0.receipts() } }

    func setReceipt(_ receipt: Receipt?, for dev: UInt64) throws {
        try claim(dev)
        try enter().setReceipt(receipt, for: dev)
    }

    func commitReceive() throws {
        try enter().commitReceive()
        leave()
    }

    func abortReceive() throws {
        let pool = held ?? shared.acquire()
        held = pool
        defer { close() }
        try pool.abortReceive()
    }
}
