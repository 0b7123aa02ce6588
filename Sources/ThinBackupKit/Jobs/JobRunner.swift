import Delta
import Foundation
import Logging

/// How `run` is asked to run a job (tests inject the clock and the logger).
public struct JobRunOptions {
    /// The time recorded for the backups (--now / $THIN_BACKUP_NOW), else each volume's real start.
    public var now: Date?
    public var metricsFile: String?
    public var logger = Logger(label: "thin-backup.run")
    public var quiet = true
    /// Seconds since some fixed point (max-runtime is measured with it).
    public var clock: () -> Double = { ProgressMeter.now() }

    public init() {}
}

/// `run JOB`: checks the whole job file and everything it names, then under the job's lock backs
/// up every volume (one failing does not stop the others), prunes by the job's retention,
/// verifies the repository when due, and saves the state and the metrics file.
public func runJob(_ job: JobConfig, _ options: JobRunOptions) throws -> JobReport {
    let transport = job.transportOptions
    try JobPreflight.check(job, options: transport)
    let lock = try PoolLock(path: "\(job.stateDir)/\(job.name).lock", what: "job \(job.name)", command: "run \(job.name)")
    defer { lock.release() }

    let keyring = try job.keyFile.map { StreamKeyring(key: try readKeyFile($0)) }
    var state = try JobState.load(job)
    var log = options.logger
    log[metadataKey: "job"] = "\(job.name)"
    let started = options.clock()
    let startDate = options.now ?? Date()
    state.lastStart = startDate.timeIntervalSince1970
    log.info("job started: \(job.volumes.count) volume(s) into \(job.repository)")

    var results: [JobReport.VolumeResult] = []
    for v in job.volumes {
        var vlog = log
        vlog[metadataKey: "volume"] = "\(v.name)"
        let t0 = options.clock()
        var vs = state.volumes[v.name] ?? JobState.Volume()
        vs.lastStart = (options.now ?? Date()).timeIntervalSince1970
        if let limit = job.maxRuntime, t0 - started > limit {
            let message = "job \(job.name), volume \(v.name): not started: max-runtime \(Int(limit)) s passed"
            vlog.error("\(message)")
            results.append(.init(volume: v.name, ok: false, seconds: 0, error: message))
            vs.lastRunOK = false
            state.volumes[v.name] = vs
            continue
        }
        do {
            let (access, dev) = try v.pool.openVolume(dev: v.dev)
            defer { access.close() }
            var req = BackupRequest(pool: access, dev: dev, repo: job.repository)
            req.now = options.now ?? Date()
            req.level = job.level
            req.workers = job.workers
            req.quiet = options.quiet
            req.options = transport
            req.keyring = keyring
            let r = try runBackup(req)
            let seconds = options.clock() - t0
            vlog[metadataKey: "backup"] = "\(r.id)"
            vlog.info("backup \(r.id): \(r.kind), \(r.rawBytes) bytes read, \(r.streamBytes) bytes written")
            results.append(.init(volume: v.name, ok: true, backup: r.id, kind: r.kind, bytesRead: r.rawBytes,
                                 bytesWritten: r.streamBytes, seconds: seconds))
            vs.lastSuccess = req.now.timeIntervalSince1970
            vs.lastBackupID = r.id
            vs.lastSeconds = seconds
            vs.bytesRead = r.rawBytes
            vs.bytesWritten = r.streamBytes
            vs.lastRunOK = true
        } catch {
            let message = "job \(job.name), volume \(v.name): \(error)"
            vlog.error("backup failed: \(error)")
            results.append(.init(volume: v.name, ok: false, seconds: options.clock() - t0, error: message))
            vs.lastRunOK = false
        }
        state.volumes[v.name] = vs
    }

    // Retention, then the verify when due; both on the whole repository.
    var prune: JobReport.PruneResult?
    if let policy = job.retention, results.contains(where: \.ok) {
        var req = PruneRequest(repo: job.repository, policy: policy)
        req.level = job.level
        req.quiet = options.quiet
        req.options = transport
        req.keyring = keyring
        do {
            let p = try runPrune(req)
            log.info("prune: removed \(p.removed.count) backup(s), kept \(p.kept.count), consolidated \(p.rebased.count)")
            prune = .init(ok: true, removed: p.removed)
        } catch {
            log.error("prune failed: \(error)")
            prune = .init(ok: false, removed: [], error: "job \(job.name): prune: \(error)")
        }
    }
    var verify: JobReport.VerifyResult?
    let now = options.now ?? Date()
    if let every = job.verifyEvery, state.lastVerify.map({ now.timeIntervalSince1970 - $0 >= every }) ?? true {
        do {
            let r = try verifyRepository(job.repository, deep: job.verifyDeep, quiet: options.quiet, options: transport, keyring: keyring)
            let problems = r.problems.map { "backup \($0.backup): \($0.message)" }
            verify = .init(ok: r.ok, deep: job.verifyDeep, streamsChecked: r.streamsChecked, problems: problems)
            if r.ok {
                state.lastVerify = now.timeIntervalSince1970
                log.info("verify: \(r.streamsChecked) stream(s) checked\(job.verifyDeep ? ", \(r.restoredAndCompared) restored" : ""): OK")
            } else {
                for p in problems { log.error("verify: \(p)") }
            }
        } catch {
            log.error("verify failed: \(error)")
            verify = .init(ok: false, deep: job.verifyDeep, streamsChecked: 0, problems: ["job \(job.name): verify: \(error)"])
        }
    }

    // Backups kept per volume, from the catalog as it is after the prune.
    if results.contains(where: \.ok), let repo = try? BackupRepository(job.repository, options: transport, keyring: keyring) {
        let all = (try? repo.catalog.all()) ?? []
        repo.close()
        for (i, r) in results.enumerated() {
            guard let id = r.backup, let rec = all.first(where: { $0.id == id }) else { continue }
            let kept = all.filter { $0.poolID == rec.poolID && $0.dev == rec.dev }.count
            results[i].backupsKept = kept
            state.volumes[r.volume]?.backupsKept = kept
        }
    }

    let code = JobReport.exitCode(volumes: results, prune: prune, verify: verify)
    state.lastEnd = (options.now ?? Date()).timeIntervalSince1970
    state.lastExitCode = code
    if code == 0 { state.lastSuccess = startDate.timeIntervalSince1970 }
    // Volumes no longer in the job file drop out of the state (and the metrics).
    state.volumes = state.volumes.filter { name, _ in job.volumes.contains { $0.name == name } }
    try state.save(job)
    let report = JobReport(job: job.name, file: job.file, startedAt: WorkflowClock.format(startDate),
                           seconds: options.clock() - started, volumes: results, prune: prune, verify: verify, exitCode: code)
    if let file = options.metricsFile {
        try JobMetrics.write(job: job, state: state, report: report, to: file)
    }
    let failed = results.filter { !$0.ok }.count
    log.log(level: code == 0 ? .info : .error,
            "job finished: \(results.count - failed) of \(results.count) volume(s) backed up, exit code \(code)")
    return report
}
