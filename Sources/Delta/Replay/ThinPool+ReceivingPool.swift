public import PoolCore
import Foundation

/// PoolCore's userspace pool as a receive target. Receipts live in the pool's sidecar
/// (annotations "receipt.<dev>"), saved by the same commit as the metadata; every commit of
/// a receive also advances the pool's transaction id by one, and a receipt names the
/// transaction id it was committed with, so a sidecar saved just before a crash (metadata not
/// yet committed) is recognised as ahead of the pool and ignored.
extension ThinPool: ReceivingPool {
    public var blockSize: Int { Int(dataBlockSize) }

    public func deviceExists(_ dev: UInt64) throws -> Bool { try devices().contains(dev) }

    public func createThin(_ dev: UInt64, virtualSize: UInt64) throws {
        try createThin(dev, virtualSize: virtualSize, originFile: nil)
    }

    public func createSnapshot(_ dev: UInt64, of origin: UInt64, virtualSize: UInt64) throws {
        try snapshot(origin: origin, as: dev)
        if try self.virtualSize(of: dev) != virtualSize { try setVirtualSize(dev, virtualSize) }
    }

    // write(_:offset:_:) is ThinPool's own (PoolCore).

    public func read(_ dev: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard originFile(of: dev) != nil else {
            let bs = Int(dataBlockSize)
            if offset % UInt64(bs) == 0, buffer.count % bs == 0, offset + UInt64(buffer.count) <= (try virtualSize(of: dev)) {
                return try readWholeBlocks(dev, from: offset / UInt64(bs), into: buffer)
            }
            // Partial blocks, or a read past the end (which throws): the byte-level path.
            let bytes = try read(dev, offset: offset, count: buffer.count)
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
            return
        }
        // Provisioned content only: an unmapped block is zeros here, not the origin's bytes.
        let bs = dataBlockSize
        var at = 0
        while at < buffer.count {
            let pos = offset + UInt64(at)
            let v = pos / bs, inBlock = Int(pos % bs)
            let n = min(Int(bs) - inBlock, buffer.count - at)
            let dst = UnsafeMutableRawBufferPointer(rebasing: buffer[at..<at + n])
            if let m = try lookup(dev, v) {
                try readData(block: m.dataBlock).withUnsafeBytes { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[inBlock..<inBlock + n])) }
            } else {
                dst.initializeMemory(as: UInt8.self, repeating: 0)
            }
            at += n
        }
    }

    /// Whole blocks unmapped, partial ones written with zeros.
    public func discard(_ dev: UInt64, bytes: Range<UInt64>) throws {
        try zeroEdges(dev, bytes) { try discard(dev, blocks: $0) }
    }

    /// Whole blocks straight into the caller's buffer (no intermediate arrays), one pread per run of
    /// consecutive data blocks: the receiver reads each block an incremental replaces.
    private func readWholeBlocks(_ dev: UInt64, from block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let bs = Int(dataBlockSize)
        let n = buffer.count / bs
        var i = 0
        while i < n {
            guard let m = try lookup(dev, block + UInt64(i)) else {
                UnsafeMutableRawBufferPointer(rebasing: buffer[i * bs..<(i + 1) * bs]).initializeMemory(as: UInt8.self, repeating: 0)
                i += 1
                continue
            }
            var j = i + 1
            while j < n, let next = try lookup(dev, block + UInt64(j)), next.dataBlock == m.dataBlock + UInt64(j - i) { j += 1 }
            guard m.dataBlock + UInt64(j - i) <= dataBlockCount else {
                throw PoolError.invalid("data block \(m.dataBlock + UInt64(j - i) - 1) beyond the data device (\(dataBlockCount) blocks)")
            }
            let dst = UnsafeMutableRawBufferPointer(rebasing: buffer[i * bs..<j * bs])
            let got = try dataFile.read(into: dst, at: m.dataBlock * dataBlockSize)
            if got < dst.count { UnsafeMutableRawBufferPointer(rebasing: dst[got...]).initializeMemory(as: UInt8.self, repeating: 0) }
            i = j
        }
    }

    /// Digest of the device's details and every (virtual block, data block, time) of its mapping, in the open transaction.
    public func mappingDigest(of dev: UInt64) throws -> Digest128 {
        try currentView().live.mappingDigest(of: dev)
    }

    /// Content digest from the device's bytes: the stream blocks its mapped blocks cover (every
    /// block when an external origin shows through).
    public func contentDigest(of dev: UInt64, blockSize bs: Int) throws -> Digest128 {
        let size = try virtualSize(of: dev)
        if originFile(of: dev) != nil {
            return try contentDigest(of: dev, blockSize: bs, blocks: [0..<(size + UInt64(bs) - 1) / UInt64(bs)])
        }
        var mapped: [UInt64] = []
        try currentView().live.forEachMapping(of: dev) { v, _ in mapped.append(v) }
        return try contentDigest(of: dev, blockSize: bs, blocks: streamRuns(mapped: mapped, poolBlockSize: blockSize, streamBlockSize: bs))
    }

    struct StoredReceipt: Codable, Equatable {
        var transaction: UInt64
        var receipt: Receipt
        /// The local device the receipt is about (a device deleted and re-created with the same id is another one).
        var local: SnapshotIdentity?

        /// Decodes `text` as JSONDecoder would: through `JSONValue` for a finished receipt (no
        /// `partial`), with JSONDecoder for anything else; nil when neither takes it.
        static func decode(_ text: String) -> StoredReceipt? {
            if let v = JSONValue.parse(text), let s = StoredReceipt(json: v) { return s }
            return try? JSONDecoder().decode(StoredReceipt.self, from: Data(text.utf8))
        }

        /// JSONEncoder's text (sorted keys), written by `JSONValue.encoded` for a finished receipt (no
        /// `partial`: byte for byte the same), by JSONEncoder for one with a checkpoint.
        func encoded() throws -> String {
            if let v = json, let bytes = v.encoded(pretty: false) { return String(decoding: bytes, as: UTF8.self) }
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            return String(decoding: try enc.encode(self), as: UTF8.self)
        }

        /// The value the synthesized Codable encodes, for a receipt without `partial`; nil with one.
        var json: JSONValue? {
            guard receipt.partial == nil else { return nil }
            func n<T: BinaryInteger>(_ x: T) -> JSONValue { .number(String(x)) }
            func digest(_ d: Digest128) -> JSONValue { .object(["high": n(d.high), "low": n(d.low)]) }
            func identity(_ i: SnapshotIdentity) -> JSONValue {
                .object(["device": n(i.device), "creationTime": n(i.creationTime), "snapshottedTime": n(i.snapshottedTime),
                         "transactionID": n(i.transactionID)])
            }
            let r = receipt
            var o: [String: JSONValue] = ["transaction": n(transaction)]
            o["receipt"] = .object(["sourcePool": digest(r.sourcePool), "source": identity(r.source), "streamID": digest(r.streamID),
                                    "contentDigest": digest(r.contentDigest), "mappingDigest": digest(r.mappingDigest)])
            if let l = local { o["local"] = identity(l) }
            return .object(o)
        }

        init(transaction: UInt64, receipt: Receipt, local: SnapshotIdentity?) {
            self.transaction = transaction
            self.receipt = receipt
            self.local = local
        }

        private init?(json v: JSONValue) {
            guard let k = v.keys, k.isSubset(of: ["transaction", "receipt", "local"]), let t = v["transaction"]?.uint64,
                  let r = v["receipt"], let rk = r.keys,
                  rk.isSubset(of: ["sourcePool", "source", "streamID", "contentDigest", "mappingDigest", "partial"]),
                  r["partial"] == nil || r["partial"] == .null,
                  let pool = r["sourcePool"].flatMap(Self.digest), let source = r["source"].flatMap(Self.identity),
                  let stream = r["streamID"].flatMap(Self.digest), let content = r["contentDigest"].flatMap(Self.digest),
                  let mapping = r["mappingDigest"].flatMap(Self.digest) else { return nil }
            var local: SnapshotIdentity?
            switch v["local"] {
            case nil, .null?: break
            case let l?: guard let i = Self.identity(l) else { return nil }; local = i
            }
            self.init(transaction: t, receipt: Receipt(sourcePool: pool, source: source, streamID: stream, contentDigest: content,
                                                       mappingDigest: mapping), local: local)
        }

        private static func digest(_ v: JSONValue) -> Digest128? {
            guard v.keys == ["high", "low"], let h = v["high"]?.uint64, let l = v["low"]?.uint64 else { return nil }
            return Digest128(high: h, low: l)
        }

        private static func identity(_ v: JSONValue) -> SnapshotIdentity? {
            guard v.keys == ["device", "creationTime", "snapshottedTime", "transactionID"], let d = v["device"]?.uint64,
                  let c = v["creationTime"]?.uint64, let s = v["snapshottedTime"]?.uint64, let t = v["transactionID"]?.uint64,
                  let c32 = UInt32(exactly: c), let s32 = UInt32(exactly: s) else { return nil }
            return SnapshotIdentity(device: d, creationTime: c32, snapshottedTime: s32, transactionID: t)
        }
    }

    private func localIdentity(_ dev: UInt64) -> SnapshotIdentity? {
        guard let d = try? details(of: dev) else { return nil }
        return SnapshotIdentity(device: dev, creationTime: d.creationTime, snapshottedTime: 0, transactionID: d.transactionID)
    }

    public func receipts() throws -> [UInt64: Receipt] {
        var out: [UInt64: Receipt] = [:]
        let now = metadata.transactionID
        for (k, v) in annotations(prefix: "receipt.") {
            guard let dev = UInt64(k.dropFirst("receipt.".count)),
                  let s = StoredReceipt.decode(v),
                  s.transaction <= now,
                  s.local == nil || s.local == localIdentity(dev) else { continue }
            out[dev] = s.receipt
        }
        return out
    }

    public func setReceipt(_ receipt: Receipt?, for dev: UInt64) throws {
        guard let receipt else { return try setAnnotation("receipt.\(dev)", nil) }
        let s = StoredReceipt(transaction: metadata.transactionID + 1, receipt: receipt, local: localIdentity(dev))
        try setAnnotation("receipt.\(dev)", try s.encoded())
    }

    /// The stored receipt of `dev` that `receipts()` would give (same checks), with its transaction id.
    private func storedReceipt(_ dev: UInt64) -> StoredReceipt? {
        guard let v = annotation("receipt.\(dev)"),
              let s = StoredReceipt.decode(v),
              s.transaction <= metadata.transactionID + 1,
              s.local == nil || s.local == localIdentity(dev) else { return nil }
        return s
    }

    public func commitReceive() throws {
        let t = metadata.transactionID
        try setTransactionID(from: t, to: t + 1)
        try commit()
    }

    public func abortReceive() throws { try abort() }
}

/// Block digest maps in the pool folder (`digests/<dev>`): every writer of a userspace pool goes
/// through ThinPool, which changes the device's write token, so a map bound to it is never stale.
extension ThinPool: KeepsBlockDigestMaps {
    public func digestMapPath(of dev: UInt64) -> String? {
        guard let sidecarPath, let slash = sidecarPath.lastIndex(of: "/") else { return nil }
        return BlockDigestMap.path(inPoolFolder: String(sidecarPath[..<slash]), dev)
    }

    public func digestMapBinding(of dev: UInt64) throws -> DigestMapBinding? {
        guard originFile(of: dev) == nil, let s = storedReceipt(dev), s.receipt.partial == nil else { return nil }
        return DigestMapBinding(receiptTransaction: s.transaction, content: s.receipt.contentDigest,
                                mapping: s.receipt.mappingDigest, writeToken: writeToken(of: dev) ?? 0)
    }
}

extension MetadataView {
    /// Digest of a device's details and every (virtual block, data block, time) of its mapping:
    /// any write, discard or snapshot that reaches the device's mappings changes it. The same on a
    /// userspace pool and on a kernel pool read through its metadata snapshot.
    public func mappingDigest(of dev: UInt64) throws -> Digest128 {
        let d = try details(of: dev)
        var hi: UInt64 = d.mappedBlocks &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(d.creationTime) << 32 ^ d.transactionID
        var lo: UInt64 = 0
        try forEachMapping(of: dev) { v, m in
            var z = (v &* 0xBF58_476D_1CE4_E5B9) ^ m.raw
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            hi &+= z
            lo = (lo ^ z) &* 0x100_0000_01B3 &+ v
        }
        return Digest128(high: hi, low: lo)
    }
}
