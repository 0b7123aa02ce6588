import Foundation
import PoolCore
import Testing
@testable import ThinBackupKit
import TestSupport

/// `serve --pool` killed at every durability step of a receive sent to it through tb://: after
/// each kill the pool is thin_check clean and the device absent, resumable or complete (never a
/// half version that looks finished); serve started again takes the same `send` again, which
/// ends with the sender's bytes (digest recomputed from the device, image compared byte for byte).
@Suite(.serialized) struct ServeKillWalkTests {
    /// A running `thin-backup serve` (the built binary) on a free port.
    final class Serve {
        let process = Process()
        let port: Int?

        /// Starts serve on `pool` with crash point `fault`; nil port when it died before listening.
        init(pool: String, dir: TempDir, fault: String?) throws {
            let portFile = dir.file("port-\(UInt32.random(in: 0 ... .max))")
            process.executableURL = URL(fileURLWithPath: CrashPoints.binary)
            process.arguments = ["serve", "--pool", pool, "--listen", "127.0.0.1:0", "--token-file", dir.file("token"),
                                 "--port-file", portFile, "--checkpoint", "1M"]
            var env = ProcessInfo.processInfo.environment
            env["THIN_BACKUP_FAULT"] = fault
            process.environment = env
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            var found: Int?
            for _ in 0..<400 where found == nil && process.isRunning {
                found = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                if found == nil { usleep(25_000) }
            }
            port = found
        }

        /// Waits up to `seconds` for the process to end by itself; true when it did.
        func ended(within seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            return !process.isRunning
        }

        /// SIGKILL (children of the test runner inherit a mask that blocks SIGTERM) and wait.
        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    /// `send` of the fixture's device to serve on `port` (the binary, one attempt per request).
    static func send(_ src: String, _ dev: UInt64, port: Int, token: String) throws -> Tool.Result {
        try Tool.run(CrashPoints.binary, ["send", "--pool", src, "--snap", "\(dev)", "--to", "tb://127.0.0.1:\(port)",
                                          "--token-file", token, "--retries", "1", "--quiet"])
    }

    @Test func killedAtEveryStepOfAReceive() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CrashPoints.binary), "build first: \(CrashPoints.binary)")
        try Tool.requireThinTools()
        let dir = TempDir("serve-kill")
        let src = try SourceChain(seed: 55, rounds: 1, label: "serve-kill-src")
        let dev = src.snapshots[0]
        let want = try src.image(dev)
        let sentDigest = try CrashPoints.deviceDigest(src.path, dev)
        let token = dir.file("token")
        try "\(LocalReceiver.token)\n".write(toFile: token, atomically: true, encoding: .utf8)
        let empty = try emptyPool(dir, "empty")

        // The steps one whole receive takes in serve.
        let counting = dir.file("count")
        try CrashPoints.copyPool(empty, counting)
        let stepsFile = dir.file("steps")
        let counter = try Serve(pool: counting, dir: dir, fault: "count:\(stepsFile)")
        let port = try #require(counter.port)
        let first = try Self.send(src.path, dev, port: port, token: token)
        counter.stop()
        try #require(first.ok, "\(first.stderr)")
        let steps = ((try? String(contentsOfFile: stepsFile, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        try #require(steps.filter { $0 == "commit" }.count >= 4, "want checkpoints and the final commit: \(steps)")

        var resumable = 0, absent = 0, complete = 0
        for n in 1...steps.count {
            let pool = dir.file("k\(n)")
            try CrashPoints.copyPool(empty, pool)
            let serve = try Serve(pool: pool, dir: dir, fault: "kill:\(n)")
            if let port = serve.port { _ = try Self.send(src.path, dev, port: port, token: token) }
            let killed = serve.ended(within: 10)
            serve.stop()
            #expect(killed && serve.process.terminationReason == .uncaughtSignal && serve.process.terminationStatus == SIGKILL,
                    "step \(n) (\(steps[n - 1])): serve was not killed there")
            #expect(try thinCheck(pool).ok, "step \(n)")

            // While serve is down: absent, resumable (a resume point), or complete and right.
            let tok = try Tool.run(CrashPoints.binary, ["receive", "--pool", pool, "--resume-token", "--as", "\(dev)"])
            let digest = try CrashPoints.deviceDigest(pool, dev)
            if tok.ok { resumable += 1 } else if digest == nil { absent += 1 } else {
                complete += 1
                #expect(digest == sentDigest, "step \(n): a device with no resume point must be complete")
            }

            // serve again, the same send again: it finishes with the sender's bytes.
            let again = try Serve(pool: pool, dir: dir, fault: nil)
            let againPort = try #require(again.port, "step \(n): serve did not start again")
            let resent = try Self.send(src.path, dev, port: againPort, token: token)
            again.stop()
            #expect(resent.ok, "step \(n): \(resent.stderr)")
            #expect(try CrashPoints.deviceDigest(pool, dev) == sentDigest, "step \(n)")
            #expect(try SourceChain.image(pool, dev) == want, "step \(n)")
            #expect(try thinCheck(pool).ok, "step \(n)")
            try? FileManager.default.removeItem(atPath: pool)
        }
        // Every outcome class was reached: the walk crossed the checkpoints and the last commit.
        #expect(resumable > 0 && absent > 0 && complete > 0, "resumable \(resumable), absent \(absent), complete \(complete)")
    }
}
