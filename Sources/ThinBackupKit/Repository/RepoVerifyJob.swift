import Delta
import Foundation
import PoolCore

/// What `verify --repo` found (`--json`).
public struct RepoVerifyReport: Codable {
    public struct Problem: Codable {
        public var backup: Int64
        public var object: String
        public var message: String
    }
    public var ok: Bool
    public var backups: Int
    public var streamsChecked: Int
    /// --deep: backups restored into a scratch pool and their content digest recomputed.
    public var restoredAndCompared: Int
    public var streamBytes: UInt64
    public var problems: [Problem]
    /// Stream objects the catalog does not name (left by an interrupted run; harmless, not a problem).
    /// Only stores that can list (folders) report them.
    public var unreferencedObjects: [String] = []
}

/// Checks a repository: every stream (checksums, records, frames, trailer; full streams' content
/// digest), that each stream is what the catalog says (snapshot, base, digest), that every chain
/// is complete, and with `deep` restores each backup into a scratch pool and recomputes its digest.
public func verifyRepository(_ repoPath: String, deep: Bool, quiet: Bool, options: TransportOptions = TransportOptions(),
                             keyring: StreamKeyring? = nil) throws -> RepoVerifyReport {
    let repo = try BackupRepository(repoPath, options: options, lockFor: "verify", keyring: keyring)
    defer { repo.close() }
    let all = try repo.catalog.all()
    let byID = Dictionary(uniqueKeysWithValues: all.map { ($0.id!, $0) })
    var report = RepoVerifyReport(ok: true, backups: all.count, streamsChecked: 0, restoredAndCompared: 0, streamBytes: 0, problems: [])
    var bad: Set<Int64> = []
    func problem(_ b: BackupRecord, _ m: String) {
        report.problems.append(.init(backup: b.id!, object: b.object, message: m))
        bad.insert(b.id!)
    }
    for b in all {
        do {
            let r = try verifyStream(source: try repo.store.source(b.object), quiet: quiet, keyring: repo.keyring)
            report.streamsChecked += 1
            report.streamBytes += r.streamBytes
            if r.device != b.snapDev { problem(b, "the stream holds snapshot \(r.device), the catalog says \(b.snapDev)") }
            if r.targetDigest != b.digest { problem(b, "the stream's digest is \(r.targetDigest ?? "-"), the catalog says \(b.digest)") }
            let want = b.baseID.flatMap { byID[$0]?.snapDev }
            if r.base != want { problem(b, "the stream is \(r.base.map { "an increment of snapshot \($0)" } ?? "full"), the catalog says \(want.map { "an increment of snapshot \($0)" } ?? "full")") }
            if r.streamBytes != b.streamBytes { problem(b, "the stream has \(r.streamBytes) bytes, the catalog says \(b.streamBytes)") }
        } catch {
            problem(b, "damaged stream: \(error)")
        }
        if let base = b.baseID, byID[base] == nil { problem(b, "its base, backup \(base), is not in the catalog") }
    }
    // Chains through a damaged backup cannot be restored.
    for b in all where !bad.contains(b.id!) {
        if let chain = try? chainOf(b, byID), let broken = chain.first(where: { bad.contains($0.id!) }) {
            report.problems.append(.init(backup: b.id!, object: b.object, message: "cannot be restored: it needs backup \(broken.id!), which is damaged"))
        }
    }
    if deep {
        for b in all {
            guard let chain = try? chainOf(b, byID), !chain.contains(where: { bad.contains($0.id!) }) else { continue }
            let scratch = try repo.scratch("verify")
            defer { try? FileManager.default.removeItem(atPath: scratch) }
            do {
                // Numbers from the catalog: checked, an overflow is this backup's problem, not a trap.
                let (twice, o1) = b.virtualSize.multipliedReportingOverflow(by: 2)
                let (dataSize, o2) = twice.addingReportingOverflow(64 * UInt64(b.blockSize))
                guard !o1, !o2 else { throw JobError("the catalog's device size \(b.virtualSize) bytes is too large for a scratch pool") }
                try ThinPool.create(folder: scratch, dataSize: dataSize, blockSize: UInt64(b.blockSize)).close()
                // A device over an external origin: the digest covers provisioned blocks, so no origin is needed here.
                let got = try replayChain(chain, from: repo.store, into: UserspacePool(folder: scratch), finalDevice: nil, quiet: quiet, keyring: repo.keyring,
                                          overOrigin: { try $0.createThin($1, virtualSize: $2, originFile: nil) })
                let view = try MetadataReader(path: "\(scratch)/metadata").live
                let data = try RandomAccessFile(path: "\(scratch)/data", writable: false)
                defer { data.close() }
                let d = try deviceDigest(view, got.last!.device,
                                         reader: FileDataBlockReader(file: data, blockSize: Int(view.superblock.dataBlockSize) * 512))
                if d.description != b.digest {
                    report.problems.append(.init(backup: b.id!, object: b.object, message: "restored content digest \(d), the catalog says \(b.digest)"))
                }
                report.restoredAndCompared += 1
            } catch {
                report.problems.append(.init(backup: b.id!, object: b.object, message: "restore into a scratch pool failed: \(error)"))
            }
        }
    }
    let named = Set(all.map(\.object))
    report.unreferencedObjects = (try repo.store.list(prefix: "streams/") ?? []).filter { !named.contains($0) }
    report.ok = report.problems.isEmpty
    return report
}
