import Delta
import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

@Suite("run JOB with key-file: an encrypted repository", .serialized)
struct JobKeyFileTests {
    @Test func keyFileEncryptsAndUnreadableKeyStartsNothing() throws {
        let f = try JobFixture()
        let keyPath = f.dir.file("job.key")
        try StreamKey.generate().fileText.write(toFile: keyPath, atomically: true, encoding: .utf8)
        let job = try f.write("key-file = \(keyPath)\nverify-every = 1d\nkeep-last = 2")
        #expect(job.keyFileLine == 3)
        let r = try runJob(job, jobOptions("2026-03-01T02:00:00Z"))
        #expect(r.exitCode == 0 && r.verify?.ok == true, "\(r)")
        #expect(r.volumes.allSatisfy { $0.ok && $0.backupsKept == 1 })
        // Without the key the repository's catalog cannot be opened.
        #expect(throws: (any Error).self) { _ = try BackupRepository(f.repo).catalog.all() }
        let keyring = StreamKeyring(key: try readKeyFile(keyPath))
        let repo = try BackupRepository(f.repo, keyring: keyring)
        #expect(try repo.catalog.all().count == 3)
        repo.close()

        // A key file that cannot be read: named at its line; nothing is snapshotted.
        let before = try f.devices(f.poolA)
        let bad = try f.write("key-file = \(f.dir.file("missing.key"))")
        do {
            _ = try runJob(bad, jobOptions("2026-03-02T02:00:00Z"))
            Issue.record("ran with an unreadable key file")
        } catch let e as JobError {
            #expect(e.description.hasPrefix("\(f.jobFile):3: key file \(f.dir.file("missing.key")): cannot read it"), "\(e)")
        }
        #expect(try f.devices(f.poolA) == before)
    }
}
