import Delta
import Foundation
import PoolCore

/// What `prune` is asked to do.
public struct PruneRequest {
    public var repo: String
    public var policy: RetentionPolicy
    public var dryRun = false
    public var level: Int32 = 3
    public var quiet = true
    public var options = TransportOptions()

    public init(repo: String, policy: RetentionPolicy) {
        self.repo = repo
        self.policy = policy
    }
}

/// What `prune` did, or would do (`--json`).
public struct PruneReport: Codable {
    public struct Rebase: Codable {
        public var id: Int64
        /// The kept backup it is now an increment of (nil: rewritten as a full stream).
        public var newBase: Int64?
        public var oldBase: Int64?
        public var streamBytes: UInt64?
    }
    public var dryRun: Bool
    public var kept: [Int64]
    public var removed: [Int64]
    public var rebased: [Rebase]
    public var freedBytes: UInt64
    public var reasons: [String: [String]]
}

/// Applies a retention policy. Never breaks a chain: a kept incremental whose base goes is
/// rewritten ("consolidated") against its nearest kept ancestor, or as a full stream when it
/// has none — its chain is replayed into a scratch pool and the difference sent again, with
/// the original snapshot identities, so later increments still apply on top. The new streams
/// and catalog are stored before any old stream is deleted.
public func runPrune(_ req: PruneRequest) throws -> PruneReport {
    let repo = try BackupRepository(req.repo, options: req.options, lockFor: req.dryRun ? nil : "prune")
    defer { repo.close() }
    let all = try repo.catalog.all()
    let byID = Dictionary(uniqueKeysWithValues: all.map { ($0.id!, $0) })
    var keep: [Int64: [String]] = [:]
    for (_, series) in Dictionary(grouping: all, by: { "\($0.poolID)/\($0.dev)" }) {
        keep.merge(req.policy.keep(series)) { $0 + $1 }
    }
    let removed = all.filter { keep[$0.id!] == nil }
    var report = PruneReport(dryRun: req.dryRun, kept: all.filter { keep[$0.id!] != nil }.map { $0.id! },
                             removed: removed.map { $0.id! }, rebased: [], freedBytes: 0,
                             reasons: Dictionary(uniqueKeysWithValues: keep.map { (String($0.key), $0.value) }))
    // Kept backups whose base goes: the nearest kept ancestor becomes their base.
    var plans: [(BackupRecord, BackupRecord?)] = []
    for b in all where keep[b.id!] != nil {
        guard let baseID = b.baseID, keep[baseID] == nil else { continue }
        var a = byID[baseID]
        while let cur = a, keep[cur.id!] == nil { a = cur.baseID.flatMap { byID[$0] } }
        plans.append((b, a))
    }
    if req.dryRun {
        report.rebased = plans.map { PruneReport.Rebase(id: $0.0.id!, newBase: $0.1?.id, oldBase: $0.0.baseID, streamBytes: nil) }
        report.freedBytes = removed.reduce(0) { $0 + $1.streamBytes }
        return report
    }
    guard !removed.isEmpty else { return report }

    var updates: [BackupRecord] = []
    var oldObjects: [String] = removed.map(\.object)
    var newObjects: [String] = []
    do {
        for (k, a) in plans {
            let chain = try chainOf(k, byID)
            let scratch = try repo.scratch("prune")
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            try ThinPool.create(folder: scratch, dataSize: k.virtualSize * 3 + 64 * UInt64(k.blockSize),
                                    blockSize: UInt64(k.blockSize)).close()
            let got = try replayChain(chain, from: repo.store, intoPool: scratch, finalDevice: nil,
                                      keep: { $0.id == a?.id }, quiet: req.quiet)
            let kk = got.last!
            let aa = a.flatMap { a in got.first { $0.record.id == a.id } }
            let object = k.object.replacingOccurrences(of: ".tbs", with: "") + "-rebased\(a.map { "-on\($0.id!)" } ?? "-full").tbs"
            let summary = try resend(scratch: scratch, target: (kk.device, kk.summary.header),
                                     base: aa.map { ($0.device, $0.summary.header, $0.record.digest) },
                                     to: try repo.store.sink(object), level: req.level)
            newObjects.append(object)
            guard summary.targetDigest?.description == k.digest else {
                throw JobError("prune: rewriting backup \(k.id!) gave digest \(summary.targetDigest?.description ?? "-"), the catalog says \(k.digest)")
            }
            var u = k
            u.baseID = a?.id
            u.object = object
            u.streamBytes = summary.streamBytes
            u.rawBytes = summary.trailer.rawBytes
            u.dataBlocks = summary.trailer.dataBlocks
            u.rebased = true
            updates.append(u)
            oldObjects.append(k.object)
            report.rebased.append(.init(id: k.id!, newBase: a?.id, oldBase: k.baseID, streamBytes: summary.streamBytes))
        }
        // Newest first, so no deleted row is still referenced when it goes.
        try repo.catalog.apply(updates: updates, deletions: removed.reversed().map { $0.id! })
        try repo.saveCatalog()
    } catch {
        for o in newObjects { try? repo.store.delete(o) }
        throw error
    }
    for o in oldObjects {
        try repo.store.delete(o)
    }
    report.freedBytes = removed.reduce(0) { $0 + $1.streamBytes } + plans.reduce(0) { $0 + $1.0.streamBytes }
    return report
}

/// The original chain of `b` (before any rewrite in this run).
func chainOf(_ b: BackupRecord, _ byID: [Int64: BackupRecord]) throws -> [BackupRecord] {
    var out = [b]
    var cur = b
    while let id = cur.baseID {
        guard let base = byID[id], out.count <= byID.count else {
            throw JobError("backup \(cur.id!) needs backup \(id), which is not in the catalog")
        }
        out.append(base)
        cur = base
    }
    return out.reversed()
}

/// Sends device `target` of the scratch pool again, under its original stream identity: as the
/// changes since `base` (a device of the same pool, with the original identity and digest of
/// its own stream), or in full.
func resend(scratch: String, target: (UInt64, StreamHeader), base: (UInt64, StreamHeader, String)?,
            to sink: any ByteSink, level: Int32) throws -> SendSummary {
    let view = try MetadataReader(path: "\(scratch)/metadata").live
    let data = try RandomAccessFile(path: "\(scratch)/data", writable: false)
    defer { data.close() }
    let bs = Int(view.superblock.dataBlockSize) * 512
    let baseDigest = base.flatMap { Digest128(hex: $0.2) } ?? .zero
    let header = StreamHeader(blockSize: UInt32(bs), virtualSize: target.1.virtualSize, level: level, streamID: randomDigest(),
                              sourcePool: target.1.sourcePool, target: target.1.target, base: base?.1.target,
                              baseFingerprint: baseDigest,
                              expectedBlocks: base == nil ? try view.details(of: target.0).mappedBlocks : 0)
    let sender = StreamSender(header: header, reader: FileDataBlockReader(file: data, blockSize: bs),
                              compressor: try ZstdCompressor(level: level, workers: 1), sink: sink,
                              baseDigest: baseDigest, resumeAt: nil)
    return try sender.send { body in
        if let base {
            try MappingDiff(view: view, left: base.0, right: target.0).changes(body)
        } else {
            try mappingRuns(view, target.0, body)
        }
    }
}
