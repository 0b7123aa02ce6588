import Delta
import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// A restore checks what it wrote against the catalog's digest, whatever member of the chain is
/// wrong: the check before the first write reads every byte of every stream but decompresses
/// nothing, so content that differs from what the stream's own trailer and the catalog claim has
/// to be caught by the restore itself.
@Suite("Restore: the restored content is checked against the catalog")
struct RestoreCheckTests {
    /// Backup 2's stream rebuilt with the same header and trailer (every checksum holds and the
    /// trailer still names the catalog's digest) but one byte of one data record changed: a sender
    /// that wrote content other than what it digested.
    private func forgeIncrement(_ w: WorkflowPool, repo: String) throws -> (full: Int64, inc: Int64, digest: String) {
        try w.day(writes: 6)
        let full = try backup(w, repo: repo, at: nightly(0)).id
        try w.day(writes: 6)
        let inc = try backup(w, repo: repo, at: nightly(1)).id
        let store = try FolderStore(path: repo)
        let b = try BackupRepository(repo).catalog.backup(inc)!
        let original = try #require(try store.get(b.object))
        var d = StreamDecoder()
        original.withUnsafeBytes { d.feed($0) }
        var records: [StreamRecord] = []
        while let r = try d.next() { records.append(r) }
        try d.finish()
        guard case .header(let h) = records.first, case .trailer(let t) = records.last else {
            Issue.record("no header or trailer")
            return (full, inc, b.digest)
        }
        var e = StreamEncoder(header: h)
        var out = e.start()
        var changed = false
        let z = try ZstdCompressor(level: 3)
        let unz = try ZstdDecompressor()
        for r in records.dropFirst().dropLast() {
            switch r {
            case let .data(first, count, frame):
                var raw = [UInt8](repeating: 0, count: Int(count) * Int(h.blockSize))
                let n = try frame.withUnsafeBytes { f in try raw.withUnsafeMutableBytes { try unz.decompress(f, into: $0) } }
                #expect(n == raw.count)
                if !changed { raw[raw.count / 2] ^= 0x5A; changed = true }
                var f2 = [UInt8](repeating: 0, count: ZstdCompressor.bound(raw.count))
                let m = try raw.withUnsafeBytes { src in try f2.withUnsafeMutableBytes { try z.compress(src, into: $0) } }
                out += f2.withUnsafeBytes { e.data(firstBlock: first, blockCount: count, rawBytes: raw.count, frame: UnsafeRawBufferPointer(rebasing: $0[0..<m])) }
            case let .zero(first, count): out += e.zero(firstBlock: first, blockCount: count)
            case let .discard(first, count): out += e.discard(firstBlock: first, blockCount: count)
            default: Issue.record("unexpected record \(r)")
            }
        }
        #expect(changed, "the increment holds no data record to change")
        out += e.finish(targetDigest: t.targetDigest)
        try store.put(b.object, out)
        // The forged stream passes every check a stream can make on its own.
        let v = try verifyStream(source: try store.source(b.object), quiet: true)
        #expect(v.ok && v.targetDigest == b.digest)
        return (full, inc, b.digest)
    }

    @Test func restoreIntoAFileRefusesContentOtherThanTheCatalogs() throws {
        let w = try WorkflowPool(seed: 91)
        let repo = w.dir.file("repo")
        let (full, inc, digest) = try forgeIncrement(w, repo: repo)
        let out = w.dir.file("r.img")
        #expect {
            try restoreToFile(repo, id: inc, to: out)
        } throws: { e in
            "\(e)".contains("backup \(inc): the restored content has digest") && "\(e)".contains("the catalog says \(digest)")
        }
        #expect(!FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: out + ".partial"))
        // The intact full backup restores, checked the same way.
        _ = try restoreToFile(repo, id: full, to: out)
        #expect(FileManager.default.fileExists(atPath: out))
    }

    /// A restore into a file checks each stream against the catalog while it merges it (there is no
    /// separate pass over the chain first): a valid stream of another snapshot in a backup's place is
    /// refused, naming the backup, and neither the file nor FILE.partial is left; an existing file
    /// of that name is not touched.
    @Test func restoreIntoAFileRefusesAStreamOfAnotherSnapshot() throws {
        let w = try WorkflowPool(seed: 93)
        let repo = w.dir.file("repo")
        var ids: [Int64] = []
        for day in 0..<3 {
            try w.day(writes: 6)
            ids.append(try backup(w, repo: repo, at: nightly(day)).id)
        }
        let store = try FolderStore(path: repo)
        let cat = try BackupRepository(repo).catalog
        let (b2, b3) = (try cat.backup(ids[1])!, try cat.backup(ids[2])!)
        try store.put(b2.object, try #require(try store.get(b3.object)))  // backup 2's object now holds backup 3's stream
        let out = w.dir.file("r.img")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: out))
        for id in [ids[1], ids[2]] {
            #expect {
                try restoreToFile(repo, id: id, to: out)
            } throws: { e in
                "\(e)".contains("backup \(ids[1]) (\(b2.object)) is damaged") && "\(e)".contains("the catalog says \(b2.snapDev)")
                    && (id == ids[1] || "\(e)".contains("which backup \(ids[2]) needs"))
            }
            #expect(!FileManager.default.fileExists(atPath: out + ".partial"))
            #expect(try String(contentsOfFile: out, encoding: .utf8) == "keep me")
        }
        // The full backup, intact, restores.
        _ = try restoreToFile(repo, id: ids[0], to: out)
        #expect(FileManager.default.fileExists(atPath: out))
    }

    /// When the restored file's sync fails (EIO at that step) the restore fails, and neither FILE nor
    /// FILE.partial is left; killed there, FILE does not appear, and the next restore replaces the
    /// FILE.partial left behind and ends with the device's bytes.
    @Test func aFailedOrKilledSyncLeavesNoFile() throws {
        let w = try WorkflowPool(seed: 94)
        let repo = w.dir.file("repo")
        for day in 0..<2 {
            try w.day(writes: 6)
            _ = try backup(w, repo: repo, at: nightly(day))
        }
        let model = w.model
        let out = w.dir.file("r.img")
        let args = ["restore", "--repo", repo, "--dev", "1", "--to", out, "--quiet"]
        let steps = try CrashPoints.steps(args, in: w.dir)
        try FileManager.default.removeItem(atPath: out)
        // The restore's one durability step of its own is the file's sync (the others: the repository lock's).
        #expect(steps.filter { $0 == "sync" }.count == 1, "\(steps)")
        let sync = try #require(steps.firstIndex(of: "sync"), "\(steps)")
        let failed = try CrashPoints.run(args, fault: "fail:\(sync + 1)")
        #expect(!failed.ok && failed.stderr.contains("sync") && failed.stderr.contains("Input/output error"), "\(failed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: out + ".partial"))
        let killed = try CrashPoints.run(args, fault: "kill:\(sync + 1)")
        #expect(killed.status == 128 + SIGKILL, "\(killed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        let again = try CrashPoints.run(args, fault: nil)
        #expect(again.ok, "\(again.stderr)")
        #expect(wfFileBytes(out) == model)
        #expect(!FileManager.default.fileExists(atPath: out + ".partial"))
    }

    @Test func restoreIntoAPoolFolderRefusesItToo() throws {
        let w = try WorkflowPool(seed: 92)
        let repo = w.dir.file("repo")
        let (_, inc, _) = try forgeIncrement(w, repo: repo)
        let target = w.dir.file("rpool")
        let p = try ThinPool.create(folder: target, dataSize: UInt64(w.size * 8), blockSize: UInt64(w.blockSize))
        p.close()
        var r = RestoreRequest(repo: repo, dev: 1, to: target)
        r.id = inc
        #expect(throws: (any Error).self) { try runRestore(r) }
        let after = try ThinPool(folder: target)
        defer { after.close() }
        #expect(try after.devices().isEmpty)
    }

    /// The read-back skips the holes of a sparse restored file (they read as zeros, which the digest
    /// leaves out) and still reads every block that holds data, including one that is mostly hole
    /// with a byte of data, after long holes, and the dense run beyond them.
    @Test func theReadBackSkipsHolesButNotData() throws {
        let dir = TempDir("restored-holes")
        let bs = 16384, blocks = 300  // blocks of four pages, so that a block can be part hole, part data
        var want = [UInt8](repeating: 0, count: bs * blocks)
        func fill(_ b: Int, _ seed: UInt8) { for i in 0..<bs { want[b * bs + i] = UInt8(truncatingIfNeeded: i &* 31) &+ seed } }
        fill(0, 1); fill(150, 2)
        for b in 260..<300 { fill(b, UInt8(b & 0xff)) }  // a dense run at the end, beyond two long holes
        want[200 * bs + 13_000] = 7                      // one byte of data in a block that is otherwise hole
        var digest = ContentDigest()
        want.withUnsafeBytes { digest.add(blocks: $0, from: 0, blockSize: bs) }
        /// Writes only the blocks of `content` that hold a nonzero byte (exactly those bytes' pages), over a sparse file.
        func write(_ content: [UInt8], _ name: String, size: Int) throws -> String {
            let path = dir.sparseFile(name, size: UInt64(size))
            let f = try RandomAccessFile(path: path, writable: true)
            defer { f.close() }
            for p in stride(from: 0, to: min(size, content.count), by: 4096) where content[p..<p + 4096].contains(where: { $0 != 0 }) {
                try content[p..<p + 4096].withUnsafeBytes { try f.write($0, at: UInt64(p)) }
            }
            return path
        }
        func record(_ digest: ContentDigest) -> BackupRecord {
            BackupRecord(id: 9, poolID: "p", dev: 1, snapDev: 9, baseID: nil, createdAt: 0, object: "o", streamBytes: 0, rawBytes: 0,
                         dataBlocks: 0, blockSize: UInt32(bs), virtualSize: UInt64(bs * blocks), digest: digest.value.description, rebased: false)
        }
        let good = try write(want, "good.img", size: bs * blocks)
        let f = try RandomAccessFile(path: good, writable: false)
        let firstHole = f.extent(at: UInt64(bs), blockSize: UInt64(bs), count: 100)
        f.close()
        try #require(firstHole.hole && firstHole.blocks == 100, "the file system keeps no holes here: the test proves nothing")
        var noByte = want
        noByte[200 * bs + 13_000] = 0
        let missing = try write(noByte, "missing.img", size: bs * blocks)
        var changed = want
        changed[287 * bs + 12] ^= 0x40
        let wrong = try write(changed, "wrong.img", size: bs * blocks)
        let short = try write(want, "short.img", size: bs * (blocks - 1))
        // One reader over 8 MiB chunks (the whole file), and three readers over chunks of 4 blocks.
        for (threads, chunk) in [(1, 8 << 20), (3, 4 * bs)] {
            func check(_ path: String) throws { try checkRestoredDigest(path, record(digest), quiet: true, threads: threads, chunkBytes: chunk) }
            try check(good)
            // The lone byte's block left out: a hole where the backup holds data.
            #expect(throws: JobError.self) { try check(missing) }
            // One byte of the dense run after the holes changed.
            #expect(throws: JobError.self) { try check(wrong) }
            // A file that ends in a hole before the backup's size: too short, not zeros.
            let e = #expect(throws: JobError.self) { try check(short) }
            #expect("\(e.map { "\($0)" } ?? "")".contains("ends at"))
        }
    }
}
