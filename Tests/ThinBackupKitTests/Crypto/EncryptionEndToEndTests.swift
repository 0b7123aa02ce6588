import Delta
import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

@Suite("Encryption end to end: files, S3, tb:// pool and spool, repositories", .serialized)
struct EncryptionEndToEndTests {
    /// Encrypted full and incremental streams: no plaintext block in them, wrong/missing/needless keys refused
    /// before anything is written, a changed byte in any record (CRCs recomputed) refused at that record.
    @Test func encryptedStreamsThroughFiles() throws {
        let src = try SourceChain(seed: 1601, rounds: 2, label: "enc-src")
        let out = TempDir("enc-files")
        let key = try Crypt.keyFile(out), other = try Crypt.keyFile(out, "other")
        let s = src.snapshots
        let full = out.file("full.tbs"), inc = out.file("inc.tbs"), clear = out.file("clear.tbs")
        #expect(try cli(["send", "--pool", src.path, "--snap", "\(s[0])", "--to", full, "--encrypt-key", key, "-q"]) == nil)
        #expect(try cli(["send", "--pool", src.path, "--from", "\(s[0])", "--snap", "\(s[1])", "--to", inc, "--encrypt-key", key, "-q"]) == nil)
        #expect(try cli(["send", "--pool", src.path, "--snap", "\(s[0])", "--to", clear, "-q"]) == nil)
        let pats = Crypt.patterns(try src.image(s[0])) + Crypt.patterns(try src.image(s[1]))
        #expect(Crypt.found(pats, in: try fileBytes(clear)) > 0, "the search finds blocks in a clear stream")
        #expect(Crypt.found(pats, in: try fileBytes(full) + fileBytes(inc)) == 0)

        let dst = try emptyPool(out)
        let meta = try fileBytes("\(dst)/metadata")
        func refused(_ args: [String], _ text: String) throws {
            let e = try cli(args)
            #expect(e?.contains(text) == true && e?.contains("\n") == false, "\(args.joined(separator: " ")): \(e ?? "accepted")")
            #expect(try fileBytes("\(dst)/metadata") == meta, "pool changed by \(args.joined(separator: " "))")
        }
        try refused(["receive", "--pool", dst, "--from", full, "-q"], "the stream is encrypted")
        try refused(["receive", "--pool", dst, "--from", full, "--encrypt-key", other, "-q"], "wrong key")
        try refused(["receive", "--pool", dst, "--from", clear, "--encrypt-key", key, "-q"], "not encrypted")
        try Crypt.write(Array("thin-backup-key-v1 00ff\n".utf8), out.file("bad-key"))
        try refused(["receive", "--pool", dst, "--from", full, "--encrypt-key", out.file("bad-key"), "-q"], "key file")
        try refused(["receive", "--pool", dst, "--from", full, "--key", out.file("missing"), "-q"], "cannot read")
        // Every record of both streams, changed: refused at that record, the pool as it was.
        for (name, path) in [("full", full), ("incremental", inc)] {
            let bytes = try fileBytes(path)
            let n = Crypt.records(bytes).count
            #expect(n >= 4)
            if name == "incremental" {
                #expect(try cli(["receive", "--pool", dst, "--from", full, "--encrypt-key", key, "-q"]) == nil)
            }
            let before = try fileBytes("\(dst)/metadata")
            for i in 1..<n {
                let bad = out.file("\(name)-\(i).tbs")
                try Crypt.write(Crypt.tampered(bytes, record: i), bad)
                let e = try cli(["receive", "--pool", dst, "--from", bad, "--encrypt-key", key, "-q"])
                #expect(e?.contains("authentication failed at record \(i) ") == true, "\(name) record \(i): \(e ?? "accepted")")
                #expect(try fileBytes("\(dst)/metadata") == before)
            }
        }
        #expect(try cli(["receive", "--pool", dst, "--from", inc, "--encrypt-key", key, "-q"]) == nil)
        #expect(try SourceChain.image(dst, s[1]) == src.image(s[1]))
        #expect(try thinCheck(dst).ok)
        // verify: the framing without the key, everything with it; merge with the key.
        #expect(try cli(["verify", "--stream", full, "-q"]) == nil)
        #expect(try cli(["verify", "--stream", full, "--encrypt-key", key, "-q"]) == nil)
        var damaged = try fileBytes(full)
        damaged[damaged.count / 2] ^= 1
        try Crypt.write(damaged, out.file("damaged.tbs"))
        #expect(try cli(["verify", "--stream", out.file("damaged.tbs"), "-q"])?.contains("stream corrupted") == true)
        #expect(try cli(["verify", "--stream", Crypt.tamperedPath(full, record: 2, out), "-q"]) == nil, "framing alone cannot see it")
        #expect(try cli(["verify", "--stream", Crypt.tamperedPath(full, record: 2, out), "--encrypt-key", key, "-q"])?
            .contains("authentication failed at record 2") == true)
        let img = out.file("merged.img")
        _ = FileManager.default.createFile(atPath: img, contents: nil)
        let noKey = try cli(["merge", "--stream", full, "--into", img, "-q"])
        #expect(noKey?.contains("the stream is encrypted") == true, "\(noKey ?? "accepted")")
        #expect(try fileBytes(img).isEmpty, "nothing written without the key")
        #expect(try cli(["merge", "--stream", full, "--into", img, "--encrypt-key", key, "-q"]) == nil)
        #expect(try fileBytes(img) == src.image(s[0]))
    }

    /// Backups into an encrypted repository: sealed catalog, key recorded, other keys refused, restore needs the key.
    @Test func encryptedRepositoryBackupAndRestore() throws {
        let src = try SourceChain(seed: 1602, rounds: 1, label: "enc-repo-src")
        let out = TempDir("enc-repo")
        let key = try Crypt.keyFile(out), other = try Crypt.keyFile(out, "other")
        let repo = out.file("repo")
        let now = ["--now", "2026-03-01T02:00:00Z"], later = ["--now", "2026-03-02T02:00:00Z"]
        #expect(try cli(["backup", "--pool", src.path, "--dev", "1", "--repo", repo, "--encrypt-key", key, "-q"] + now) == nil)
        let pool = try ThinPool(folder: src.path)
        try pool.write(1, offset: 0, [UInt8](repeating: 0x5A, count: 3 * Int(SourceChain.blockSize)))
        try pool.commit()
        pool.close()
        let image = try src.image(1)
        #expect(try cli(["backup", "--pool", src.path, "--dev", "1", "--repo", repo, "--encrypt-key", key, "-q"] + later) == nil)
        let catalog = try fileBytes("\(repo)/catalog.sqlite")
        #expect(catalog.starts(with: SealedBlob.magic) && !catalog.starts(with: Array("SQLite format".utf8)))
        let id = try readKeyFile(key).id.description
        #expect(try String(contentsOfFile: "\(repo)/key.json", encoding: .utf8).contains(id))
        let everything = Crypt.allBytes(under: repo)
        #expect(Crypt.found(Crypt.patterns(image), in: everything) == 0)
        #expect(!String(decoding: everything, as: UTF8.self).contains("snap"), "object names carry no snapshot ids")
        // Another key, or none: refused, the repository unchanged.
        let before = everything
        for (args, text) in [(["--encrypt-key", other], "not with the key given"), ([], "is encrypted")] {
            let e = try cli(["backup", "--pool", src.path, "--dev", "1", "--repo", repo, "-q"] + args + later)
            #expect(e?.contains(text) == true, "\(e ?? "accepted")")
            #expect(Crypt.allBytes(under: repo) == before)
        }
        // Restore needs the key; with it the bytes are the device's.
        let file = out.file("restored.img")
        #expect(try cli(["restore", "--repo", repo, "--dev", "1", "--to", file, "-q"])?.contains("is encrypted") == true)
        #expect(!FileManager.default.fileExists(atPath: file))
        #expect(try cli(["restore", "--repo", repo, "--dev", "1", "--to", file, "--encrypt-key", other, "-q"])?.contains("not with the key given") == true)
        #expect(try cli(["restore", "--repo", repo, "--dev", "1", "--to", file, "--encrypt-key", key, "-q"]) == nil)
        #expect(try fileBytes(file) == image)
        let dst = try emptyPool(out)
        #expect(try cli(["restore", "--repo", repo, "--dev", "1", "--to", dst, "--encrypt-key", key, "-q"]) == nil)
        #expect(try SourceChain.image(dst, 1) == image)
        #expect(try cli(["verify", "--repo", repo, "--deep", "--encrypt-key", key, "-q"]) == nil)
        #expect(try cli(["list", "--repo", repo, "--encrypt-key", key]) == nil)
        // A clear repository takes no key.
        let clearRepo = out.file("clear-repo")
        #expect(try cli(["backup", "--pool", src.path, "--dev", "1", "--repo", clearRepo, "-q"] + now) == nil)
        #expect(try cli(["backup", "--pool", src.path, "--dev", "1", "--repo", clearRepo, "--encrypt-key", key, "-q"] + later)?
            .contains("holds unencrypted backups") == true)
    }

    /// Raw replication: a spool receiver keeps the encrypted stream as it came, without the key; a pool
    /// receiver needs the key; S3 stores the stream as sent and a changed object is refused at its record.
    @Test func encryptedStreamsThroughSpoolPoolAndS3() throws {
        let src = try SourceChain(seed: 1603, rounds: 2, label: "enc-net-src")
        let out = TempDir("enc-net")
        let key = try Crypt.keyFile(out)
        let keyring = StreamKeyring(key: try readKeyFile(key))
        let s = src.snapshots
        let pats = Crypt.patterns(try src.image(s[0])) + Crypt.patterns(try src.image(s[1]))
        // Spool: no key, the bytes kept as sent.
        let spool = try LocalReceiver()
        let toSpool = "tb://127.0.0.1:\(spool.server.port)"
        #expect(try cli(["send", "--pool", src.path, "--snap", "\(s[0])", "--to", toSpool, "--token-file", spool.tokenFile,
                         "--encrypt-key", key, "-q"]) == nil)
        let spooled = "\(spool.spool)/\(s[0]).stream"
        #expect(Crypt.found(pats, in: try fileBytes(spooled)) == 0)
        #expect(try cli(["verify", "--stream", spooled, "-q"]) == nil)
        let fromSpool = try emptyPool(out, "from-spool")
        #expect(try cli(["receive", "--pool", fromSpool, "--from", spooled, "--encrypt-key", key, "-q"]) == nil)
        #expect(try SourceChain.image(fromSpool, s[0]) == src.image(s[0]))
        // tb:// into a pool: with the key it applies; a receiver without it refuses and keeps the pool.
        let dst = try emptyPool(out)
        let rx = try LocalReceiver(receiver: { _ in try PoolStreamReceiver(pool: UserspacePool(folder: dst), keyring: keyring) })
        let plain = try emptyPool(out, "no-key")
        let meta = try fileBytes("\(plain)/metadata")
        let rxNoKey = try LocalReceiver(receiver: { _ in try PoolStreamReceiver(pool: UserspacePool(folder: plain)) })
        let e = try cli(["send", "--pool", src.path, "--snap", "\(s[0])", "--to", "tb://127.0.0.1:\(rxNoKey.server.port)",
                         "--token-file", rxNoKey.tokenFile, "--encrypt-key", key, "-q"])
        #expect(e?.contains("encrypted") == true, "\(e ?? "accepted")")
        #expect(try fileBytes("\(plain)/metadata") == meta)
        var base: UInt64?
        for snap in s {
            #expect(try cli(["send", "--pool", src.path, "--snap", "\(snap)", "--to", "tb://127.0.0.1:\(rx.server.port)",
                             "--token-file", rx.tokenFile, "--encrypt-key", key, "-q"] + (base.map { ["--from", "\($0)"] } ?? [])) == nil)
            #expect(try SourceChain.image(dst, snap) == src.image(snap))
            base = snap
        }
        #expect(try thinCheck(dst).ok)
        // A pool receiver refuses a tampered stream at its record.
        let full = out.file("full.tbs")
        #expect(try cli(["send", "--pool", src.path, "--snap", "\(s[0])", "--to", full, "--encrypt-key", key, "-q"]) == nil)
        let dst2 = try emptyPool(out, "dst2")
        let meta2 = try fileBytes("\(dst2)/metadata")
        let rx2 = try LocalReceiver(receiver: { _ in try PoolStreamReceiver(pool: UserspacePool(folder: dst2), keyring: keyring) })
        let sink = try Transport.sink(for: "tb://127.0.0.1:\(rx2.server.port)", options: {
            var o = try rx2.options()
            o.targetDevice = s[0]
            return o
        }())
        let bad = Crypt.tampered(try fileBytes(full), record: 2)
        let sent: Error? = {
            do { try bad.withUnsafeBytes { try sink.write($0) }; try sink.finish(); return nil } catch { return error }
        }()
        #expect("\(sent.map { "\($0)" } ?? "accepted")".contains("authentication failed at record 2"))
        #expect(try fileBytes("\(dst2)/metadata") == meta2)

        // S3 (moto): the object holds no plaintext; a changed object is refused at its record.
        let moto = try MotoServer()
        // The keys of this moto are set for the in-process cli calls under the one environment lock.
        try ProcessEnvironment.with(moto.environment()) { () throws -> Void in
            let ep = ["--endpoint", moto.endpoint]
            let obj = "s3://\(moto.bucket)/enc-full"
            #expect(try cli(["send", "--pool", src.path, "--snap", "\(s[0])", "--to", obj, "--encrypt-key", key, "-q"] + ep) == nil)
            var o = TransportOptions()
            o.s3Endpoint = moto.endpoint
            let stored = try readAll(try Transport.source(for: obj, options: o))
            #expect(stored.starts(with: StreamFormat.magic) && Crypt.found(pats, in: stored) == 0)
            let framing = try verifyStream(source: try Transport.source(for: obj, options: o), quiet: true)
            #expect(framing.encrypted && framing.framingOnly && framing.records == UInt64(Crypt.records(stored).count))
            let s3dst = try emptyPool(out, "s3-dst")
            let s3meta = try fileBytes("\(s3dst)/metadata")
            let badObj = "s3://\(moto.bucket)/enc-bad"
            let put = try Transport.sink(for: badObj, options: o)
            try Crypt.tampered(stored, record: 3).withUnsafeBytes { try put.write($0) }
            try put.finish()
            let re = try cli(["receive", "--pool", s3dst, "--from", badObj, "--encrypt-key", key, "-q"] + ep)
            #expect(re?.contains("authentication failed at record 3") == true, "\(re ?? "accepted")")
            #expect(try fileBytes("\(s3dst)/metadata") == s3meta)
            #expect(try cli(["receive", "--pool", s3dst, "--from", obj, "--encrypt-key", key, "-q"] + ep) == nil)
            #expect(try SourceChain.image(s3dst, s[0]) == src.image(s[0]))
        }
    }
}

/// The command-line side: exit codes, one-line errors, key files and passphrases.
@Suite struct KeyCommandLineTests {
    @Test func keyFilesPassphrasesAndOneLineErrors() throws {
        let bin = try ThinBackupBinary.required()
        let out = TempDir("enc-cli")
        let key = out.file("k")
        let made = try Tool.run(bin, ["key", "create", "--to", key])
        #expect(made.ok, "\(made.stderr)")
        var st = stat()
        #expect(stat(key, &st) == 0 && st.st_mode & 0o777 == 0o600)
        let id = try Tool.run(bin, ["key", "show-id", key])
        #expect(id.ok && id.stdout.trimmingCharacters(in: .whitespacesAndNewlines).count == 32 && made.stdout.contains(id.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let before = try fileBytes(key)
        let again = try Tool.run(bin, ["key", "create", "--to", key])
        #expect(again.status == 1 && again.stderr.split(separator: "\n").count == 1 && again.stderr.contains("already exists"))
        #expect(try fileBytes(key) == before)
        try Crypt.write(Array("thin-backup-key-v1 zz 00\n".utf8), out.file("corrupt"))
        let corrupt = try Tool.run(bin, ["key", "show-id", out.file("corrupt")])
        #expect(corrupt.status == 1 && corrupt.stderr.split(separator: "\n").count == 1 && corrupt.stderr.contains("key file"))

        let src = try SourceChain(seed: 1604, rounds: 1, label: "enc-cli-src")
        let s = src.snapshots[0]
        let dest = out.file("s.tbs")
        // Empty passphrase (file or environment): one line, exit 1, nothing written.
        try Crypt.write([10], out.file("empty-pass"))
        chmod(out.file("empty-pass"), 0o600)
        let empty = try Tool.run(bin, ["send", "--pool", src.path, "--snap", "\(s)", "--to", dest, "--passphrase-file", out.file("empty-pass"), "-q"])
        #expect(empty.status == 1 && empty.stderr.split(separator: "\n").count == 1 && empty.stderr.contains("empty"), "\(empty.stderr)")
        let emptyEnv = try Tool.run("env", ["THIN_BACKUP_PASSPHRASE=", bin, "send", "--pool", src.path, "--snap", "\(s)", "--to", dest, "-q"])
        #expect(emptyEnv.status == 1 && emptyEnv.stderr.contains("empty"), "\(emptyEnv.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dest))
        // A passphrase file others can read: a warning, then it works; receive with the environment's passphrase.
        try Crypt.write(Array("correct horse battery staple\n".utf8), out.file("pass"))
        chmod(out.file("pass"), 0o644)
        let sent = try Tool.run(bin, ["send", "--pool", src.path, "--snap", "\(s)", "--to", dest, "--passphrase-file", out.file("pass"), "-q"])
        #expect(sent.ok && sent.stderr.contains("warning: passphrase file") && sent.stderr.contains("readable by others"), "\(sent.stderr)")
        let dst = try emptyPool(out)
        let meta = try fileBytes("\(dst)/metadata")
        let wrong = try Tool.run("env", ["THIN_BACKUP_PASSPHRASE=correct horse battery stapler", bin, "receive", "--pool", dst, "--from", dest, "-q"])
        #expect(wrong.status == 1 && wrong.stderr.split(separator: "\n").count == 1 && wrong.stderr.contains("wrong key"), "\(wrong.stderr)")
        #expect(try fileBytes("\(dst)/metadata") == meta)
        let right = try Tool.run("env", ["THIN_BACKUP_PASSPHRASE=correct horse battery staple", bin, "receive", "--pool", dst, "--from", dest, "-q"])
        #expect(right.ok, "\(right.stderr)")
        #expect(try SourceChain.image(dst, s) == src.image(s))
        // A key file where a passphrase stream is: one line naming the mismatch.
        let dst2 = try emptyPool(out, "dst2")
        let mismatch = try Tool.run(bin, ["receive", "--pool", dst2, "--from", dest, "--encrypt-key", key, "-q"])
        #expect(mismatch.status == 1 && mismatch.stderr.contains("passphrase"), "\(mismatch.stderr)")
    }
}

extension Crypt {
    static func tamperedPath(_ path: String, record: Int, _ dir: TempDir) throws -> String {
        let p = dir.file("tampered-\(record)-\(UInt32.random(in: 0 ... .max)).tbs")
        try write(tampered(try fileBytes(path), record: record), p)
        return p
    }
}
