public import PoolCore
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// What a block digest map is valid for: the receive that wrote it (the transaction id its receipt
/// was committed with), the content and mapping digests it recorded, and the device's write token
/// then (`ThinPool.writeToken`: any later write or discard changes it). A map whose binding differs
/// from the device's current one is not used.
public struct DigestMapBinding: Equatable, Sendable {
    public var receiptTransaction: UInt64
    public var content: Digest128
    public var mapping: Digest128
    public var writeToken: UInt64

    public init(receiptTransaction: UInt64, content: Digest128, mapping: Digest128, writeToken: UInt64) {
        self.receiptTransaction = receiptTransaction
        self.content = content
        self.mapping = mapping
        self.writeToken = writeToken
    }
}

/// A pool that keeps, for each device a receive wrote, the content digest contribution of each of
/// its stream blocks (`BlockDigestMap`), so that an incremental receive takes the old blocks'
/// contributions from its base's map instead of reading the blocks back. Only a pool whose every
/// writer changes the device's write token can: a userspace pool (ThinPool+ReceivingPool.swift). A
/// kernel pool cannot (a write through /dev/mapper changes a block in place, no mapping, no token).
public protocol KeepsBlockDigestMaps: ReceivingPool {
    /// Where the map of `dev` lives (nil: this pool keeps none).
    func digestMapPath(of dev: UInt64) -> String?
    /// What a map of `dev` must be bound to now (its receipt as of the open transaction, its write
    /// token); nil when `dev` has no finished receipt or cannot have a map (an external origin).
    func digestMapBinding(of dev: UInt64) throws -> DigestMapBinding?
}

extension KeepsBlockDigestMaps {
    /// Removes the map of `dev` (a deleted device's).
    public func removeDigestMap(of dev: UInt64) {
        if let p = digestMapPath(of: dev) { BlockDigestMap.remove(p) }
    }
}

/// The file of a device's per-block digest contributions: a 4 KiB header, then for stream block v
/// its contribution (`ContentDigest.contribution`: high, low, little-endian) at 4096 + 16 v. A hole
/// (or zeros) is a block that contributes nothing (all zeros, unmapped). Sparse: only the entries
/// of blocks ever written take space, and the file is read and written by ranges, never loaded.
///
/// Written beside the final path (`PATH.new`), synced (on another thread, during the receive's
/// commit) and renamed over PATH after that commit: a crash before the rename leaves no map (the receive removed any at PATH when it began),
/// or, from a receive whose rename was lost, an older one, whose binding (an older receipt
/// transaction) does not match.
public enum BlockDigestMap {
    public static let headerSize: UInt64 = 4096
    static let magic: UInt64 = 0x3150_414D_4749_4454  // "TDGIMAP1" little-endian
    static let version: UInt32 = 1
    static let headerBytes = 80

    /// Number of entries read or written per call.
    static let chunk = 65536

    public static func encodeHeader(blockSize: Int, _ b: DigestMapBinding) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: headerBytes)
        func put(_ v: UInt64, _ at: Int) { for i in 0..<8 { h[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        put(magic, 0)
        put(UInt64(version), 8)
        put(UInt64(blockSize), 16)
        put(b.receiptTransaction, 24)
        put(b.content.high, 32); put(b.content.low, 40)
        put(b.mapping.high, 48); put(b.mapping.low, 56)
        put(b.writeToken, 64)
        put(XXHash64.hash(Array(h[0..<72]), seed: 0x6D61_70), 72)
        return h
    }

    /// The block size and binding of a header, nil when it is not a valid one.
    public static func decodeHeader(_ h: [UInt8]) -> (blockSize: Int, binding: DigestMapBinding)? {
        guard h.count >= headerBytes else { return nil }
        func get(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(h[at + $1]) << (8 * UInt64($1)) } }
        guard get(0) == magic, get(8) == UInt64(version), get(72) == XXHash64.hash(Array(h[0..<72]), seed: 0x6D61_70),
              get(16) > 0, get(16) <= UInt64(Int32.max) else { return nil }
        return (Int(get(16)), DigestMapBinding(receiptTransaction: get(24), content: Digest128(high: get(32), low: get(40)),
                                               mapping: Digest128(high: get(48), low: get(56)), writeToken: get(64)))
    }

    /// Byte offset of block `v`'s entry; nil beyond any file.
    static func offset(_ v: UInt64) -> UInt64? {
        let (a, o1) = v.multipliedReportingOverflow(by: 16)
        let (b, o2) = a.addingReportingOverflow(headerSize)
        return o1 || o2 || b > UInt64(Int64.max) / 2 ? nil : b
    }

    /// Where a pool folder keeps the map of `dev`.
    public static func path(inPoolFolder folder: String, _ dev: UInt64) -> String { "\(folder)/digests/\(dev)" }

    /// Removes the map of a device (and a half-written one): `pool delete`, a receive that writes none.
    public static func remove(_ path: String) {
        unlink(path)
        unlink(path + ".new")
    }

    /// The map at `path` when its header says stream blocks of `blockSize` and `binding`; nil otherwise
    /// (no file, another binding, a damaged header).
    public static func open(_ path: String, blockSize: Int, binding: DigestMapBinding) -> Reader? {
        guard let f = try? RandomAccessFile(path: path, writable: false) else { return nil }
        var h = [UInt8](repeating: 0, count: headerBytes)
        guard let n = try? h.withUnsafeMutableBytes({ try f.read(into: $0, at: 0) }), n == headerBytes,
              let d = decodeHeader(h), d.blockSize == blockSize, d.binding == binding else {
            f.close()
            return nil
        }
        return Reader(file: f)
    }

    /// A valid map, read by ranges of entries.
    public final class Reader {
        let file: RandomAccessFile
        private var buffer: UnsafeMutableRawBufferPointer?
        /// Entries read so far (tests).
        public private(set) var entriesRead: UInt64 = 0

        init(file: RandomAccessFile) { self.file = file }
        deinit {
            buffer?.deallocate()
            file.close()
        }

        /// Calls `body` with the entries of blocks `first..<first+count`, a chunk at a time (from, values).
        public func forEach(_ first: UInt64, _ count: UInt64, _ body: (UInt64, UnsafeBufferPointer<Digest128>) throws -> Void) throws {
            if buffer == nil { buffer = .allocate(byteCount: BlockDigestMap.chunk * 16, alignment: 16) }
            let buf = buffer!
            var i: UInt64 = 0
            while i < count {
                let n = Int(min(UInt64(BlockDigestMap.chunk), count - i))
                guard let at = BlockDigestMap.offset(first + i) else { throw ReplayError.beyondDevice(0) }
                let b = UnsafeMutableRawBufferPointer(rebasing: buf[0..<n * 16])
                let got = try file.read(into: b, at: at)
                if got < b.count { UnsafeMutableRawBufferPointer(rebasing: b[got...]).initializeMemory(as: UInt8.self, repeating: 0) }
                let vals = b.bindMemory(to: Digest128.self)
                for k in 0..<n { vals[k] = Digest128(high: UInt64(littleEndian: vals[k].high), low: UInt64(littleEndian: vals[k].low)) }
                entriesRead += UInt64(n)
                try body(first + i, UnsafeBufferPointer(vals))
                i += UInt64(n)
            }
        }

        /// The sum of the entries of blocks `first..<first+count`.
        public func sum(_ first: UInt64, _ count: UInt64) throws -> Digest128 {
            var s = Digest128.zero
            try forEach(first, count) { _, vals in
                for v in vals { s.high &+= v.high; s.low &+= v.low }
            }
            return s
        }
    }

    /// A new map being written at `path.new`: empty (a full receive) or a copy of a base's entries.
    public final class Writer: @unchecked Sendable {
        public let path: String
        let file: RandomAccessFile
        private var installed = false

        /// Starts the map of `path`, from a copy of `base`'s entries when given.
        public init(path: String, copying base: Reader?) throws {
            self.path = path
            let dir = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
            if !dir.isEmpty { mkdir(dir, 0o755) }
            let tmp = path + ".new"
            unlink(tmp)
            file = try RandomAccessFile(path: tmp, writable: true, create: true)
            do {
                if let base { try copy(from: base.file) }
            } catch {
                file.close()
                unlink(tmp)
                throw error
            }
        }

        deinit {
            syncDone?.wait()  // a sync still running uses the file
            file.close()
            if !installed { unlink(path + ".new") }
        }

        /// Copies the data extents of `src` (its holes stay holes).
        private func copy(from src: RandomAccessFile) throws {
            let size = try src.size()
            try file.truncate(to: size)
            let page: UInt64 = 4096
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
            defer { buf.deallocate() }
            var at: UInt64 = 0
            while at < size {
                let pages = (size - at + page - 1) / page
                let e = src.extent(at: at, blockSize: page, count: pages)
                let len = min(e.blocks * page, size - at)
                if !e.hole {
                    var done: UInt64 = 0
                    while done < len {
                        let n = Int(min(UInt64(buf.count), len - done))
                        let b = UnsafeMutableRawBufferPointer(rebasing: buf[0..<n])
                        let got = try src.read(into: b, at: at + done)
                        if got > 0 { try file.write(UnsafeRawBufferPointer(rebasing: b[0..<got]), at: at + done) }
                        done += UInt64(n)
                    }
                }
                at += len
            }
        }

        /// Writes the entries of blocks from `first`.
        public func set(_ first: UInt64, _ values: UnsafeBufferPointer<Digest128>) throws {
            guard !values.isEmpty else { return }
            guard let at = BlockDigestMap.offset(first) else { throw ReplayError.beyondDevice(0) }
            if UInt64(1).littleEndian == 1 {
                try file.write(UnsafeRawBufferPointer(values), at: at)
            } else {
                let le = values.map { Digest128(high: $0.high.littleEndian, low: $0.low.littleEndian) }
                try le.withUnsafeBytes { try file.write($0, at: at) }
            }
        }

        /// Makes the entries of blocks `first..<first+count` zero (blocks that contribute nothing).
        public func clear(_ first: UInt64, _ count: UInt64) throws {
            guard count > 0 else { return }
            guard let a = BlockDigestMap.offset(first), let b = BlockDigestMap.offset(first + count) else {
                throw ReplayError.beyondDevice(0)
            }
            let size = try file.size()
            let end = min(b, size)
            guard a < end else { return }  // past the end: reads as zeros already
            let page: UInt64 = 4096
            let lo = (a + page - 1) / page * page, hi = end / page * page
            let zeros = [UInt8](repeating: 0, count: Int(page))
            func zero(_ r: Range<UInt64>) throws {
                var p = r.lowerBound
                while p < r.upperBound {
                    let n = Int(min(page, r.upperBound - p))
                    try zeros.withUnsafeBytes { try file.write(UnsafeRawBufferPointer(rebasing: $0[0..<n]), at: p) }
                    p += UInt64(n)
                }
            }
            if lo < hi {
                try zero(a..<lo)
                try file.discard(offset: lo, length: hi - lo)
                try zero(hi..<end)
            } else {
                try zero(a..<end)
            }
        }

        /// Signalled when the sync `finish` started is done; `synced` says whether it succeeded.
        private var syncDone: DispatchSemaphore?
        private var synced = false

        /// Writes the header (before the receive's commit) and syncs the file on another thread,
        /// while the receive commits (`install` waits for it).
        public func finish(blockSize: Int, binding: DigestMapBinding) throws {
            let h = BlockDigestMap.encodeHeader(blockSize: blockSize, binding)
            try h.withUnsafeBytes { try file.write($0, at: 0) }
            let done = DispatchSemaphore(value: 0)
            syncDone = done
            // A queue of its own (overcommit): not a global queue's thread, which `install` could
            // wait for from one of the same pool.
            DispatchQueue(label: "thin-backup.digest-map-sync").async { [self] in
                synced = (try? self.file.sync(faultStep: false)) != nil
                done.signal()
            }
        }

        /// Waits for the map's sync and puts it in place (after the receive's commit: until the
        /// rename the device has no map, so the sync need not end before the commit). Best effort:
        /// without it the device has no map (or an older one, whose binding no longer matches).
        /// False when not installed.
        @discardableResult
        public func install() -> Bool {
            guard let done = syncDone else { return false }
            done.wait()
            syncDone = nil
            guard synced else { return false }
            if rename(path + ".new", path) == 0 { installed = true }
            return installed
        }
    }
}
