import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// One Prometheus sample as prometheus_client's parser read it.
struct PromSample: Decodable {
    var family: String
    var type: String
    var name: String
    var labels: [String: String]
    var value: Double
}

/// Parses Prometheus text format with Python's prometheus_client (Tests/Scripts/prom_parse.py;
/// scripts/setup.sh installs it). A parse error fails the test.
func parsePrometheus(_ text: String) throws -> [PromSample] {
    let r = try Tool.run("python3", [Repo.root + "/Tests/Scripts/prom_parse.py"], stdin: Data(text.utf8))
    guard r.ok else {
        Issue.record("prometheus_client rejected the text (\(r.stderr)); scripts/setup.sh installs prometheus_client:\n\(text)")
        return []
    }
    return try JSONDecoder().decode([PromSample].self, from: Data(r.stdout.utf8))
}

extension Array where Element == PromSample {
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        first { $0.name == name && $0.labels == labels }?.value
    }
}

@Suite("Monitoring: run's node_exporter textfile, serve's /metrics, JSON logs", .serialized)
struct MetricsAndLogsTests {
    /// The command line, end to end: a job with a held pool exits 3; the textfile parses and says
    /// which volume last succeeded when; the JSON log has one event per line with job, volume, backup.
    @Test func runWritesMetricsFileAndJSONLogs() throws {
        let f = try JobFixture()
        try f.write("keep-last = 3")
        let metrics = f.dir.file("textfile/nightly.prom")
        try FileManager.default.createDirectory(atPath: f.dir.file("textfile"), withIntermediateDirectories: true)
        let holder = try PoolLock(pool: f.poolB, command: "test holding pool B")
        let r1 = try ThinBackupBinary.run(["run", f.jobFile, "--metrics-file", metrics, "--log-format", "json", "--json"],
                                   environment: ["THIN_BACKUP_NOW": "2026-03-01T02:00:00Z"])
        holder.release()
        #expect(r1.status == ExitStatus.partial, "\(r1.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(r1.stdout.utf8)) as? [String: Any]
        #expect(report?["exitCode"] as? Int == 3)
        #expect(report?["version"] as? String == ThinBackupVersion.current)

        // Logs: every stderr line is one JSON object; the backups name job, volume and backup id.
        let lines = r1.stderr.split(separator: "\n").map(String.init)
        let events = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        #expect(events.count == lines.count - 1, "every line but the final error line is a JSON event:\n\(r1.stderr)")
        #expect(lines.last?.hasPrefix("thin-backup: job nightly: 1 of 3 volume(s) failed") == true, "\(r1.stderr)")
        let backups = events.filter { $0["backup"] != nil }
        #expect(backups.map { $0["volume"] } == ["a", "c"])
        #expect(backups.allSatisfy { $0["job"] == "nightly" && $0["level"] == "info" && $0["time"] != nil })
        let failed = events.first { $0["volume"] == "b" && $0["level"] == "error" }
        #expect(failed?["message"]?.contains("test holding pool B") == true, "\(events)")

        let t1 = WorkflowClock.parse("2026-03-01T02:00:00Z")!.timeIntervalSince1970
        var m = try parsePrometheus(String(contentsOfFile: metrics, encoding: .utf8))
        #expect(m.value("thin_backup_volume_last_success_timestamp_seconds", ["job": "nightly", "volume": "a"]) == t1)
        #expect(m.value("thin_backup_volume_last_success_timestamp_seconds", ["job": "nightly", "volume": "b"]) == nil)
        #expect(m.value("thin_backup_volume_last_run_success", ["job": "nightly", "volume": "b"]) == 0)
        #expect(m.value("thin_backup_volume_last_run_success", ["job": "nightly", "volume": "c"]) == 1)
        #expect(m.value("thin_backup_job_last_start_timestamp_seconds", ["job": "nightly"]) == t1)
        #expect(m.value("thin_backup_job_last_success_timestamp_seconds", ["job": "nightly"]) == nil)
        #expect(m.value("thin_backup_job_exit_code", ["job": "nightly"]) == 3)
        #expect(m.first { $0.name == "thin_backup_volume_read_bytes" }?.type == "gauge")
        // 70 000 bytes written at 4096: blocks 0 and 1 of the 64 KiB-block device → 128 KiB read.
        #expect(m.value("thin_backup_volume_read_bytes", ["job": "nightly", "volume": "a"]) == 131_072)
        #expect((m.value("thin_backup_volume_written_bytes", ["job": "nightly", "volume": "a"]) ?? 0) > 0)
        #expect(m.value("thin_backup_volume_backups_kept", ["job": "nightly", "volume": "a"]) == 1)

        // A second night, all well: b's success appears, a's moves on, the job succeeded.
        let r2 = try ThinBackupBinary.run(["run", f.jobFile, "--metrics-file", metrics, "-q"],
                                   environment: ["THIN_BACKUP_NOW": "2026-03-02T02:00:00Z"])
        #expect(r2.status == 0, "\(r2.stderr)")
        let t2 = t1 + 86400
        m = try parsePrometheus(String(contentsOfFile: metrics, encoding: .utf8))
        #expect(m.value("thin_backup_volume_last_success_timestamp_seconds", ["job": "nightly", "volume": "b"]) == t2)
        #expect(m.value("thin_backup_job_last_success_timestamp_seconds", ["job": "nightly"]) == t2)
        #expect(m.value("thin_backup_volume_backups_kept", ["job": "nightly", "volume": "a"]) == 2)
        #expect(m.value("thin_backup_volume_read_bytes", ["job": "nightly", "volume": "a"]) == 0, "nothing changed")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: f.dir.file("textfile"))
        #expect(leftovers == ["nightly.prom"], "the temporary file was renamed, not left")
    }

    @Test func badJobFileIsOneLineAndExit64() throws {
        let f = try JobFixture()
        try "repository = /r\nkeep-lst = 2\n".write(toFile: f.jobFile, atomically: true, encoding: .utf8)
        let r = try ThinBackupBinary.run(["run", f.jobFile])
        #expect(r.status == 64)
        #expect(r.stderr == "thin-backup: \(f.jobFile):2: unknown key 'keep-lst' (known: \(JobConfig.jobKeys.sorted().joined(separator: ", ")))\n")
        try f.write(volumes: "[volume a]\npool = \(f.poolA)\ndev = 4\n")
        let c = try ThinBackupBinary.run(["run", "--check", f.jobFile])
        #expect(c.status == 1)
        #expect(c.stderr == "thin-backup: \(f.jobFile):4: volume a: pool \(f.poolA) has no thin device 4\n")
        let byName = try ThinBackupBinary.run(["run", "--check", "nightly"], environment: ["THIN_BACKUP_JOBS": f.dir.path])
        #expect(byName.stderr.contains("\(f.jobFile):4: volume a"), "a name is looked up in $THIN_BACKUP_JOBS")
    }

    @Test func jsonLogLineCarriesMetadata() throws {
        let line = JSONLogHandler.line(level: "warning", label: "thin-backup.run", message: "disk \"full\"",
                                       metadata: ["job": "nightly", "backup": "12", "volume": "db", "message": "clash"],
                                       at: Date(timeIntervalSince1970: 1_772_330_400.25))
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
        #expect(obj == ["time": "2026-03-01T02:00:00.250Z", "level": "warning", "label": "thin-backup.run",
                        "message": "disk \"full\"", "job": "nightly", "backup": "12", "volume": "db", "meta.message": "clash"])
    }

    /// serve's /metrics (no token needed) after a good receive and a refused request.
    @Test func serveExposesPrometheusMetrics() throws {
        let src = try SourceChain(seed: 17, rounds: 1, label: "metrics-src")
        let rx = try LocalReceiver()
        let snap = src.snapshots[0]
        let err = try cli(["send", "--pool", src.path, "--snap", "\(snap)", "--to", "tb://127.0.0.1:\(rx.server.port)",
                           "--token-file", rx.tokenFile, "-q"])
        #expect(err == nil, "\(err ?? "")")
        let (status, _) = try receiverGET(port: rx.server.port, path: "/v1/devices/1/receive", token: "wrong")
        #expect(status == 401)
        let response = try CurlEasy().perform(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(rx.server.port)/metrics"))
        #expect(response.status == 200)
        let m = try parsePrometheus(String(decoding: response.body, as: UTF8.self))
        #expect(m.value("thin_backup_serve_receives_total", ["state": "complete"]) == 1)
        #expect(m.value("thin_backup_serve_receives_total", ["state": "failed"]) == 0)
        #expect(m.value("thin_backup_serve_errors_total", ["kind": "unauthorized"]) == 1)
        #expect(m.value("thin_backup_serve_receives_active") == 0)
        let spooled = try FileManager.default.attributesOfItem(atPath: rx.spool + "/" + rx.spoolFiles.first { $0.hasSuffix(".stream") }!)[.size] as? Int
        #expect(m.value("thin_backup_serve_received_bytes_total") == spooled.map(Double.init), "bytes received = the stream's size")
        #expect((m.value("thin_backup_serve_uptime_seconds") ?? -1) >= 0)
        #expect(m.value("thin_backup_build_info", ["version": ThinBackupVersion.current]) == 1)
        #expect(m.first { $0.family == "thin_backup_serve_receives" }?.type == "counter")
    }
}

@Suite("README: the job-file walk-through runs as written")
struct JobWalkthroughTests {
    @Test func jobWalkthroughRunsAsWritten() throws {
        let dir = TempDir("tb-readme-job")
        let r = try ReadmeWalkthroughTests().run(try ReadmeWalkthroughTests.blocks("job"), in: dir)
        #expect(r.ok, "job walk-through failed:\n\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("job nightly: 2 of 2 volume(s) backed up, 0 pruned, verified\n"), "\(r.stdout)")
        #expect(r.stdout.contains("is good (2 volume(s)"))
        let successLines = r.stdout.split(separator: "\n").filter { $0.hasPrefix("thin_backup_volume_last_success_timestamp_seconds{") }
        #expect(successLines.count == 2, "\(r.stdout)")
    }
}
