import Delta
import Foundation
import PoolCore
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A receive into a pool that places writes (`PlacesWrites`) lets the decompression workers write
/// the data records, and a regular file is decoded mapped (`ByteSource.mapRest`): the same devices,
/// digests and refusals as a receive that reads and writes on its own thread.
@Suite struct PlacedReceiveTests {
    /// A stream file read with read(2), or mapped when asked (as ThinBackupKit's FileSource).
    final class FileStreamSource: ByteSource {
        let fd: Int32
        var reads = 0
        var mapped = false
        init(_ path: String) { fd = open(path, O_RDONLY) }
        deinit { close(fd) }
        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            if mapped { return 0 }
            reads += 1
            return Glibc.read(fd, buffer.baseAddress, buffer.count)
        }
        func mapRest() -> FileMapping? {
            let m = FileMapping.rest(ofRegularFile: fd, from: UInt64(lseek(fd, 0, SEEK_CUR)))
            mapped = m != nil
            return m
        }
    }

    /// Data records in a clear stream.
    static func dataRecords(_ stream: [UInt8]) throws -> UInt64 {
        var d = StreamDecoder()
        d.feed(stream)
        var n: UInt64 = 0
        while let r = try d.next() { if case .data = r { n += 1 } }
        return n
    }

    @Test func dataRecordsAreWrittenByTheWorkersWhereNothingIsReadBack() throws {
        let dir = TempDir("placed-receive")
        let (s, ids) = ReplayTests.chain(seed: 91, length: 4)
        var pool = try ThinPoolReplayTests.makePool(dir)
        var base: UInt64?
        for (k, id) in ids.enumerated() {
            let stream = try s.send(id, from: base, streamID: UInt64(50 + k))
            let r = try DigestMapTests.receive(pool, s, id, from: base, stream: UInt64(50 + k), "device \(id)")
            let records = try Self.dataRecords(stream)
            #expect(records > 0)
            #expect(r.recordsWrittenOnWorkers == records, "device \(id): every data record written by a worker")
            pool.close()
            pool = try ThinPool(folder: dir.file("pool"))
            base = id
        }
        // Without the base's map the replaced blocks are read back first: nothing is placed, and the
        // digest (which a placed write would have made wrong) is still right.
        s.snapshot(60, of: ids.last!)
        s.mutate(60, changes: 12)
        try FileManager.default.removeItem(atPath: DigestMapTests.mapPath(dir, ids.last!))
        let r = try DigestMapTests.receive(pool, s, 60, from: ids.last!, stream: 60, "without the base's map")
        #expect(r.replacedBlocksRead > 0)
        #expect(r.recordsWrittenOnWorkers == 0)
        let check = try ThinPoolReplayTests.thinCheck(dir)
        #expect(check.ok, "thin_check: \(check.stderr)")
    }

    /// Receiver blocks of 256 KiB under a stream of 64 KiB blocks: a record that does not cover whole
    /// receiver blocks is written by the receiving thread, the others by the workers, and the bytes are right.
    @Test func recordsOfPartReceiverBlocksAreWrittenAsBefore() throws {
        let dir = TempDir("placed-receive-bs")
        let (s, ids) = ReplayTests.chain(seed: 92, length: 3)
        let pool = try ThinPoolReplayTests.makePool(dir, blockSize: 256 * 1024)
        var base: UInt64?
        var placed: UInt64 = 0, records: UInt64 = 0
        for (k, id) in ids.enumerated() {
            let stream = try s.send(id, from: base, streamID: UInt64(70 + k))
            let r = Replayer(pool: pool)
            _ = try r.receive(from: MemorySource(stream, chunk: 50_000))
            #expect(try pool.read(id, offset: 0, count: s.image(id).count) == s.image(id), "device \(id)")
            placed += r.recordsWrittenOnWorkers
            records += try Self.dataRecords(stream)
            base = id
        }
        #expect(placed < records, "some records cover part of a receiver block")
        let check = try ThinPoolReplayTests.thinCheck(dir)
        #expect(check.ok, "thin_check: \(check.stderr)")
    }

    @Test func aStreamFileIsDecodedMapped() throws {
        let dir = TempDir("mapped-receive")
        let (s, ids) = ReplayTests.chain(seed: 93, length: 2)
        let pool = try ThinPoolReplayTests.makePool(dir)
        var base: UInt64?
        for (k, id) in ids.enumerated() {
            let path = dir.file("s\(k).tbs")
            try Data(try s.send(id, from: base, streamID: UInt64(80 + k))).write(to: URL(fileURLWithPath: path))
            let src = FileStreamSource(path)
            let r = Replayer(pool: pool)
            let sum = try r.receive(from: src)
            #expect(r.decodedMapped && src.mapped && src.reads == 0, "device \(id) decoded mapped, nothing read")
            #expect(sum.streamBytes == UInt64(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int))
            #expect(sum.contentDigest == s.digest(id))
            #expect(try pool.read(id, offset: 0, count: s.image(id).count) == s.image(id), "device \(id)")
            base = id
        }

        // Cut short, or with bytes after the trailer: refused as from a read file, and the pool unchanged.
        s.snapshot(20, of: ids.last!)
        s.mutate(20, changes: 20)
        let inc = try s.send(20, from: ids.last!, streamID: 90)
        let before = try ThinPoolReplayTests.snapshotOf(pool)
        for (name, bytes) in [("cut", Array(inc[0..<(inc.count * 2 / 3)])), ("trailing", inc + [0, 1, 2])] {
            let path = dir.file("\(name).tbs")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let r = Replayer(pool: pool)
            #expect(throws: StreamError.self, "\(name)") { try r.receive(from: FileStreamSource(path)) }
            #expect(r.decodedMapped, "\(name): decoded mapped")
            let after = try ThinPoolReplayTests.snapshotOf(pool)
            #expect(before.0 == after.0 && before.1 == after.1 && before.2 == after.2, "\(name): the pool is unchanged")
        }
        let check = try ThinPoolReplayTests.thinCheck(dir)
        #expect(check.ok, "thin_check: \(check.stderr)")
    }
}
