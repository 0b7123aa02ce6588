import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// pool.json across commits: a commit saves it before the metadata commit and again after only
/// when that first file would not read as the pool's exact sidecar. Whatever was or was not
/// written again, a fresh open must see exactly the pool's devices, sizes and notes.
@Suite struct SidecarCommitTests {
    static let bs: UInt64 = 65536

    /// What a fresh process sees: the devices with their sizes, and the notes.
    static func reopened(_ dir: String) throws -> (devices: [UInt64: UInt64], notes: [String: String]) {
        let p = try ThinPool(folder: dir, readOnly: true)
        defer { p.close() }
        var sizes: [UInt64: UInt64] = [:]
        for d in try p.devices() { sizes[d] = try p.virtualSize(of: d) }
        return (sizes, p.annotations(prefix: ""))
    }

    /// Deleting a device removes the notes about it (`<owner>.<dev>`) and no others: a pool that
    /// receives into a device and deletes it again and again keeps a pool.json of one size.
    @Test func deletingADeviceDropsItsNotes() throws {
        let tmp = TempDir("sidecar-delete")
        let dir = tmp.file("pool")
        let pool = try ThinPool.create(folder: dir, dataSize: 64 * Self.bs)
        for d: UInt64 in [2, 12] { try pool.createThin(d, virtualSize: 2 * Self.bs) }
        try pool.setAnnotation("receipt.2", "two")
        try pool.setAnnotation("receipt.12", "twelve")
        try pool.setAnnotation("other.2", "also two")
        try pool.setAnnotation("keep", "k")
        try pool.commit()
        try pool.delete(2)
        try pool.commit()
        pool.close()
        let seen = try Self.reopened(dir)
        #expect(seen.devices == [12: 2 * Self.bs])
        #expect(seen.notes == ["receipt.12": "twelve", "keep": "k"])
    }

    /// A commit that moves the transaction id (as a receive's does) with notes set and removed:
    /// the notes of the new transaction, no more and no fewer, and the new device's size.
    @Test func transactionCommitNotesAreExactAfterReopen() throws {
        let tmp = TempDir("sidecar-commit")
        let dir = tmp.file("pool")
        let pool = try ThinPool.create(folder: dir, dataSize: 64 * Self.bs)
        try pool.createThin(1, virtualSize: 8 * Self.bs)
        try pool.setAnnotation("keep", "k")
        try pool.setAnnotation("drop", "d")
        try pool.commit()
        try pool.createThin(2, virtualSize: 3 * Self.bs)
        try pool.write(2, offset: 0, [UInt8](repeating: 5, count: Int(Self.bs)))
        try pool.setAnnotation("drop", nil)
        try pool.setAnnotation("receipt.2", "r")
        let t = pool.metadata.transactionID
        try pool.setTransactionID(from: t, to: t + 1)
        try pool.commit()
        pool.close()
        let seen = try Self.reopened(dir)
        #expect(seen.devices == [1: 8 * Self.bs, 2: 3 * Self.bs])
        // Besides the notes set, the written device's write token (ThinPool+WriteToken.swift).
        let token2 = seen.notes["written.2"]
        #expect(token2 != nil)
        #expect(seen.notes.filter { !$0.key.hasPrefix("written.") } == ["keep": "k", "receipt.2": "r"])
        // A later commit that does not move the id keeps them (the pending notes become the committed ones).
        let again = try ThinPool(folder: dir)
        try again.write(1, offset: 0, [UInt8](repeating: 6, count: Int(Self.bs)))
        try again.commit()
        again.close()
        let last = try Self.reopened(dir).notes
        #expect(last.filter { !$0.key.hasPrefix("written.") } == ["keep": "k", "receipt.2": "r"])
        #expect(last["written.1"] != nil && last["written.2"] == token2, "device 1 written, 2 not")
    }

    /// A device deleted in the transaction: the file saved before the metadata commit still lists it
    /// (a crash there keeps its size), so the commit writes the exact sidecar after it.
    @Test func deletedDeviceLeavesPoolJSONAtCommit() throws {
        let tmp = TempDir("sidecar-delete")
        let dir = tmp.file("pool")
        let pool = try ThinPool.create(folder: dir, dataSize: 64 * Self.bs)
        try pool.createThin(1, virtualSize: 8 * Self.bs)
        try pool.createThin(2, virtualSize: 4 * Self.bs)
        try pool.commit()
        try pool.delete(2)
        try pool.commit()
        pool.close()
        #expect(try PoolSidecar.load("\(dir)/pool.json").devices.keys.sorted() == ["1"])
        #expect(try Self.reopened(dir).devices == [1: 8 * Self.bs])
    }
}

extension SidecarCommitTests {
    /// Every transaction that writes or discards a device gives it a new write token, kept across a
    /// reopen; an aborted one leaves the old; deleting the device drops it.
    @Test func writesChangeTheDevicesWriteToken() throws {
        let tmp = TempDir("sidecar-token")
        let dir = tmp.file("pool")
        var pool = try ThinPool.create(folder: dir, dataSize: 64 * Self.bs)
        try pool.createThin(1, virtualSize: 8 * Self.bs)
        try pool.createThin(2, virtualSize: 8 * Self.bs)
        try pool.commit()
        #expect(pool.writeToken(of: 1) == nil)
        var seen: Set<UInt64> = []
        func next(_ note: String, _ change: () throws -> Void) throws {
            try change()
            try pool.commit()
            pool.close()
            pool = try ThinPool(folder: dir)
            let t = try #require(pool.writeToken(of: 1), "\(note)")
            #expect(seen.insert(t).inserted, "\(note): the token did not change")
        }
        try next("write") { try pool.write(1, offset: 4096, [UInt8](repeating: 1, count: 100)) }
        try next("two writes, one transaction") {
            try pool.write(1, offset: 0, [UInt8](repeating: 2, count: Int(Self.bs)))
            try pool.write(1, offset: Self.bs, [UInt8](repeating: 2, count: Int(Self.bs)))
        }
        try next("discard") { try pool.discard(1, blocks: 0..<1) }
        let t = pool.writeToken(of: 1)
        try pool.write(2, offset: 0, [UInt8](repeating: 3, count: 10))
        try pool.commit()
        #expect(pool.writeToken(of: 1) == t, "writing device 2 changed device 1's token")
        try pool.write(1, offset: 0, [UInt8](repeating: 4, count: 10))
        try pool.abort()
        #expect(pool.writeToken(of: 1) == t, "an aborted write changed the token")
        // After an abort the next write still gets a new one.
        try next("write after abort") { try pool.write(1, offset: 0, [UInt8](repeating: 5, count: 10)) }
        try pool.delete(1)
        try pool.commit()
        #expect(pool.writeToken(of: 1) == nil)
        pool.close()
    }
}
