import ArgumentParser
import Foundation

/// `thin-backup run JOB`: every volume of a job file, then prune and verify, under one lock.
struct RunCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a job file: back up every volume it names, prune by its retention, verify when due.",
        discussion: """
            JOB is a name (/etc/thin-backup/jobs/JOB.conf, or $THIN_BACKUP_JOBS/JOB.conf) or a path. The whole \
            file and everything it names (pools, devices, repository) are checked before anything starts. One \
            volume failing does not stop the others. Exit codes: 0 all done; 3 some volumes failed, the others \
            were backed up; 1 failed (every volume, the prune or the verify); 64 usage or a bad job file; 75 the \
            job (or a pool or the repository) is locked by another run.
            """
    ).underRoot()

    @Argument(help: ArgumentHelp("The job: a name or a path to its .conf file.", valueName: "job"))
    public var job: String

    @Option(help: ArgumentHelp("Write a node_exporter textfile (Prometheus text format) here after the run.", valueName: "file"))
    public var metricsFile: String?

    @Option(help: ArgumentHelp("Record this time instead of now (2026-01-31T02:00:00Z; also $THIN_BACKUP_NOW).", valueName: "time"))
    public var now: String?

    @Flag(help: "Check the job file and everything it names, then stop (nothing is backed up).")
    public var check = false

    @OptionGroup public var logging: LogFormatOptions
    @OptionGroup public var output: ReportOptions

    /// A name means the jobs folder; anything with a slash or ending in .conf is a path.
    static func resolve(_ job: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if job.contains("/") || job.hasSuffix(".conf") { return job }
        return "\(environment["THIN_BACKUP_JOBS"] ?? "/etc/thin-backup/jobs")/\(job).conf"
    }

    public func run() throws {
        let path = Self.resolve(job)
        let config = try JobConfig.load(path: path)
        var options = JobRunOptions()
        options.now = try now.map { try WorkflowClock.now($0) } ?? (ProcessInfo.processInfo.environment["THIN_BACKUP_NOW"] != nil ? try WorkflowClock.now(nil) : nil)
        options.metricsFile = metricsFile
        options.quiet = true
        logging.bootstrap()
        options.logger = logging.logger("thin-backup.run")
        if check {
            try JobPreflight.check(config, options: config.transportOptions)
            if !output.quiet { print("job \(config.name): \(config.file) is good (\(config.volumes.count) volume(s), repository \(config.repository))") }
            return
        }
        let report = try runJob(config, options)
        let failed = report.volumes.filter { !$0.ok }
        if !output.json {
            for v in failed { ThinBackupMain.writeStderr("thin-backup: \(v.error ?? "job \(report.job), volume \(v.volume): failed")\n") }
            if let p = report.prune, let e = p.error { ThinBackupMain.writeStderr("thin-backup: \(e)\n") }
            for p in report.verify?.problems ?? [] { ThinBackupMain.writeStderr("thin-backup: job \(report.job): verify: \(p)\n") }
        }
        try output.report(report, line: "job \(report.job): \(report.volumes.count - failed.count) of \(report.volumes.count) volume(s) backed up"
            + (report.prune.map { $0.ok ? ", \($0.removed.count) pruned" : ", prune failed" } ?? "")
            + (report.verify.map { $0.ok ? ", verified" : ", verify found problems" } ?? ""))
        if report.exitCode != 0 {
            throw JobError(report.exitCode == ExitStatus.partial ? .partial : .failure,
                           "job \(report.job): " + (failed.isEmpty ? "failed" : "\(failed.count) of \(report.volumes.count) volume(s) failed"))
        }
    }
}

extension JobConfig {
    var transportOptions: TransportOptions {
        var t = TransportOptions()
        t.s3Endpoint = s3Endpoint
        t.tls.caFile = caFile
        return t
    }
}
