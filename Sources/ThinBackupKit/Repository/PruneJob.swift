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
    /// The key of an encrypted repository (its streams are read and rewritten with it).
    public var keyring: StreamKeyring?
}

/// What `prune` did, or would do (`--json`).
public struct PruneReport: Codable {
    public struct Rebase: Codable {
        public var id: Int64
        /// The kept backup it is now an increment of (nil: rewritten as a full stream).
        public var newBase: Int64?
        public var oldBase: Int64?
        /// The consolidated stream's size (the same in a dry run, which composes it without storing it).
        public var streamBytes: UInt64?
    }
    public var dryRun: Bool
    public var kept: [Int64]
    public var removed: [Int64]
    public var rebased: [Rebase]
    /// Net bytes the repository shrinks by: streams deleted, minus consolidated streams written, plus
    /// the catalog's change. The same in a dry run as in the real run (negative: it grows).
    public var freedBytes: Int64
    public var reasons: [String: [String]]
}

/// Applies a retention policy. Never breaks a chain: a kept incremental whose base goes is
/// rewritten ("consolidated") against its nearest kept ancestor, or as a full stream when it
/// has none — by composing the records of the streams between (`StreamComposer`: newest wins,
/// whole frames copied), under the original snapshot identities, so later increments still apply
/// on top. The new streams and catalog are stored before any old stream is deleted. A dry run
/// composes the same streams into a counter and applies the catalog change to its work copy, so
/// it reports the same figures.
public func runPrune(_ req: PruneRequest) throws -> PruneReport {
    let repo = try BackupRepository(req.repo, options: req.options, lockFor: req.dryRun ? nil : "prune", keyring: req.keyring)
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
    guard !removed.isEmpty else { return report }
    let catalogBefore = Int64(try repo.catalog.bytes().count)

    var updates: [BackupRecord] = []
    var oldObjects: [String] = removed.map(\.object)
    var newObjects: [String] = []
    var written: Int64 = 0
    do {
        for (k, a) in plans {
            let object = k.object.replacingOccurrences(of: ".tbs", with: "") + "-rebased\(a.map { "-on\($0.id!)" } ?? "-full").tbs"
            let sink: any ByteSink = req.dryRun ? CountingSink() : try repo.store.sink(object)
            if !req.dryRun { newObjects.append(object) }
            let summary = try consolidate(k, onto: a, byID: byID, store: repo.store, sink: sink, level: req.level,
                                        keyring: repo.keyring, key: repo.key)
            var u = k
            u.baseID = a?.id
            u.object = object
            u.streamBytes = summary.streamBytes
            u.rawBytes = summary.trailer.rawBytes
            u.dataBlocks = summary.trailer.dataBlocks
            u.rebased = true
            updates.append(u)
            oldObjects.append(k.object)
            written += Int64(summary.streamBytes)
            report.rebased.append(.init(id: k.id!, newBase: a?.id, oldBase: k.baseID, streamBytes: summary.streamBytes))
        }
        // Newest first, so no deleted row is still referenced when it goes. A dry run changes only its work copy.
        try repo.catalog.apply(updates: updates, deletions: removed.reversed().map { $0.id! })
        if req.dryRun {
            try repo.catalog.setGeneration(try repo.catalog.generation + 1)
        } else {
            try repo.saveCatalog()
        }
    } catch {
        for o in newObjects { try? repo.store.delete(o) }
        throw error
    }
    let catalogAfter = Int64(try repo.catalog.bytes().count)
    let deleted = removed.reduce(Int64(0)) { $0 + Int64($1.streamBytes) } + plans.reduce(Int64(0)) { $0 + Int64($1.0.streamBytes) }
    report.freedBytes = deleted - written + catalogBefore - catalogAfter
    if req.dryRun { return report }
    for o in oldObjects {
        try repo.store.delete(o)
    }
    return report
}

/// Rewrites backup `k` as an increment of its kept ancestor `a` (nil: as a full stream) by
/// composing the streams of its original chain after `a`. Checks the result's identities and
/// digest against the catalog before anything else changes.
func consolidate(_ k: BackupRecord, onto a: BackupRecord?, byID: [Int64: BackupRecord], store: any ObjectStore,
                 sink: any ByteSink, level: Int32, keyring: StreamKeyring? = nil, key: StreamKey? = nil) throws -> SendSummary {
    let chain = try chainOf(k, byID)
    let segment = a.map { a in Array(chain.drop { $0.id != a.id }.dropFirst()) } ?? chain
    let composer = try StreamComposer(inputs: try segment.map { try store.source($0.object) }, sink: sink,
                                      level: level, streamID: randomDigest(), keyring: keyring, key: key)
    let summary: SendSummary
    do {
        summary = try composer.compose()
    } catch {
        throw JobError("prune: consolidating backup \(k.id!): \(error)")
    }
    guard summary.targetDigest?.description == k.digest, summary.header.target.device == k.snapDev,
          a.map({ summary.header.baseFingerprint.description == $0.digest && summary.header.base?.device == $0.snapDev }) ?? !summary.header.isIncremental else {
        throw JobError("prune: consolidating backup \(k.id!) gave a stream of \(summary.header.target) digest \(summary.targetDigest?.description ?? "-"), the catalog says snapshot \(k.snapDev) digest \(k.digest)")
    }
    return summary
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

/// A sink that only counts (prune --dry-run: the size a consolidated stream would have).
final class CountingSink: ByteSink {
    private(set) var count: UInt64 = 0
    func write(_ bytes: UnsafeRawBufferPointer) throws { count += UInt64(bytes.count) }
    func finish() throws {}
}
