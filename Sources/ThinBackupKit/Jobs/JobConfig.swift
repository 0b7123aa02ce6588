import Foundation

/// One `[volume NAME]` section: a thin device on a pool folder (`pool = DIR`, `dev = N`), on a
/// live kernel pool (`dm-pool = NAME`, `dev = N`), or an LVM thin volume (`lv = VG/LV`). `run`
/// opens it through `PoolSelection`, as the commands open `--pool`, `--dm-pool` and `--lv`.
public struct JobVolume: Equatable, Sendable {
    public var name: String
    /// The section header's line (errors about the volume name it).
    public var line: Int
    public var pool: PoolSelection
    /// The thin device; nil for `lv` (LVM reports the volume's thin id).
    public var dev: UInt64?
}

/// A job file, checked key by key: `/etc/thin-backup/jobs/NAME.conf` (README, "Install and schedule").
public struct JobConfig: Equatable, Sendable {
    public var name: String
    public var file: String
    public var repository: String
    /// The line of `repository = …` (a repository that cannot be reached is reported there).
    public var repositoryLine = 0
    public var retention: RetentionPolicy?
    /// Verify the repository when the last verify is older than this (nil: never).
    public var verifyEvery: TimeInterval?
    public var verifyDeep = false
    public var level: Int32 = 3
    public var workers: Int32 = 1
    /// No volume starts after this long from the run's start (the rest count as failed).
    public var maxRuntime: TimeInterval?
    public var s3Endpoint: String?
    public var caFile: String?
    /// A key file (`thin-backup key create`): the repository is encrypted with it.
    public var keyFile: String?
    public var keyFileLine = 0
    /// Where the run keeps its lock and state (last success, last verify).
    public var stateDir = "/var/lib/thin-backup"
    public var volumes: [JobVolume] = []

    static let jobKeys: Set<String> = ["repository", "keep-last", "keep-daily", "keep-weekly", "keep-monthly", "verify-every",
                                       "verify-deep", "level", "workers", "max-runtime", "s3-endpoint", "ca-file", "state-dir", "key-file"]
    static let volumeKeys: Set<String> = ["pool", "dev", "lv", "dm-pool"]

    /// Reads and checks the job file at `path` (syntax and values; not the world: see `JobPreflight`).
    public static func load(path: String) throws -> JobConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            let why = FileManager.default.fileExists(atPath: path) ? "cannot read it" : "no such job file"
            throw JobError.jobFile(path, line: 0, why)
        }
        guard let text = String(data: data, encoding: .utf8) else { throw JobError.jobFile(path, line: 0, "not UTF-8 text") }
        return try parse(text, path: path)
    }

    /// The job's name: the file name without ".conf".
    public static func name(ofFile path: String) -> String {
        let base = (path as NSString).lastPathComponent
        return base.hasSuffix(".conf") ? String(base.dropLast(5)) : base
    }

    public static func parse(_ text: String, path: String) throws -> JobConfig {
        let reader = try JobFileReader(path: path, text: text)
        var job = JobConfig(name: name(ofFile: path), file: path, repository: "")
        let top = reader.sections[0]
        func err(_ line: Int, _ m: String) -> JobError { reader.error(line, m) }
        var repositoryLine: Int?
        var keep = RetentionPolicy()
        var anyKeep = false
        for e in top.entries {
            guard jobKeys.contains(e.key) else {
                throw err(e.line, Self.volumeKeys.contains(e.key)
                          ? "'\(e.key)' belongs in a [volume NAME] section"
                          : "unknown key '\(e.key)' (known: \(jobKeys.sorted().joined(separator: ", ")))")
            }
            switch e.key {
            case "repository":
                guard !e.value.isEmpty else { throw err(e.line, "repository is empty") }
                job.repository = e.value
                job.repositoryLine = e.line
                repositoryLine = e.line
            case "keep-last": keep.last = try count(e, err); anyKeep = true
            case "keep-daily": keep.daily = try count(e, err); anyKeep = true
            case "keep-weekly": keep.weekly = try count(e, err); anyKeep = true
            case "keep-monthly": keep.monthly = try count(e, err); anyKeep = true
            case "verify-every":
                let d = try duration(e, err)
                job.verifyEvery = d == 0 ? nil : d
            case "verify-deep": job.verifyDeep = try bool(e, err)
            case "level":
                let v = try count(e, err)
                guard (1...19).contains(v) else { throw err(e.line, "level: zstd levels are 1 to 19, got \(v)") }
                job.level = Int32(v)
            case "workers":
                let v = try count(e, err)
                guard (1...256).contains(v) else { throw err(e.line, "workers: 1 to 256, got \(v)") }
                job.workers = Int32(v)
            case "max-runtime":
                let d = try duration(e, err)
                job.maxRuntime = d == 0 ? nil : d
            case "s3-endpoint": job.s3Endpoint = e.value
            case "ca-file": job.caFile = e.value
            case "state-dir":
                guard e.value.hasPrefix("/") else { throw err(e.line, "state-dir must be an absolute path") }
                job.stateDir = e.value
            case "key-file":
                guard !e.value.isEmpty else { throw err(e.line, "key-file is empty") }
                job.keyFile = e.value
                job.keyFileLine = e.line
            default: break
            }
        }
        guard repositoryLine != nil else { throw err(0, "no 'repository = …' line (a folder, http(s)://URL or s3://BUCKET/PREFIX)") }
        job.retention = anyKeep ? keep : nil
        guard reader.sections.count > 1 else { throw err(0, "no [volume NAME] section: nothing to back up") }
        for s in reader.sections.dropFirst() {
            job.volumes.append(try volume(s, err))
        }
        return job
    }

    private static func volume(_ s: JobFileReader.Section, _ err: (Int, String) -> JobError) throws -> JobVolume {
        let name = s.volume!
        var pool: (selection: PoolSelection, key: String, line: Int)?
        var dev: (id: UInt64, line: Int)?
        for e in s.entries {
            switch e.key {
            case "pool", "dm-pool", "lv":
                if let p = pool {
                    throw err(e.line, "volume \(name): give one of pool, dm-pool and lv ('\(p.key)' is on line \(p.line))")
                }
                pool = (try selection(e, volume: name, err), e.key, e.line)
            case "dev":
                guard let v = UInt64(e.value), v <= UInt64(1) << 24 - 1 else {
                    throw err(e.line, "volume \(name): dev must be a thin device id (0 to 16777215), got '\(e.value)'")
                }
                dev = (v, e.line)
            default:
                throw err(e.line, jobKeys.contains(e.key)
                          ? "volume \(name): '\(e.key)' is a job-wide key; put it before the first [volume] section"
                          : "volume \(name): unknown key '\(e.key)' (known: \(volumeKeys.sorted().joined(separator: ", ")))")
            }
        }
        guard let pool else { throw err(s.line, "volume \(name): no 'pool = DIR', 'dm-pool = NAME' or 'lv = VG/LV'") }
        if pool.key == "lv" {
            if let dev { throw err(dev.line, "volume \(name): dev does not go with lv (the volume's thin id is its device)") }
        } else if dev == nil {
            throw err(s.line, "volume \(name): no 'dev = N' (the thin device on its \(pool.key))")
        }
        return JobVolume(name: name, line: s.line, pool: pool.selection, dev: dev?.id)
    }

    /// `pool = DIR`, `dm-pool = NAME` or `lv = VG/LV`, its value checked for form (whether it
    /// exists is `JobPreflight`'s business).
    private static func selection(_ e: JobFileReader.Entry, volume: String, _ err: (Int, String) -> JobError) throws -> PoolSelection {
        let v = e.value
        switch e.key {
        case "pool":
            guard !v.isEmpty else { throw err(e.line, "volume \(volume): pool is empty") }
            return .folder(v)
        case "dm-pool":
            // Device-mapper names: up to 127 bytes, no '/'.
            guard !v.isEmpty, v.utf8.count <= 127, !v.contains("/"), !v.contains(where: \.isWhitespace) else {
                throw err(e.line, "volume \(volume): dm-pool must be a device-mapper name (no '/' or spaces, at most 127 bytes), got '\(v)'")
            }
            return .dmPool(v)
        default:
            // LVM names: letters, digits and + _ . -, not starting with '-'.
            let parts = v.split(separator: "/", omittingEmptySubsequences: false)
            let lvmName: (Substring) -> Bool = { p in
                !p.isEmpty && p.first != "-" && p.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+_.-".contains($0)) }
            }
            guard parts.count == 2, parts.allSatisfy(lvmName) else {
                throw err(e.line, "volume \(volume): lv must be VG/LV (LVM names: letters, digits, + _ . -), got '\(v)'")
            }
            return .lv(v)
        }
    }

    private static func count(_ e: JobFileReader.Entry, _ err: (Int, String) -> JobError) throws -> Int {
        guard let v = Int(e.value), v >= 0, v <= 1_000_000 else {
            throw err(e.line, "\(e.key): expected a whole number from 0 to 1000000, got '\(e.value)'")
        }
        return v
    }

    private static func bool(_ e: JobFileReader.Entry, _ err: (Int, String) -> JobError) throws -> Bool {
        switch e.value.lowercased() {
        case "yes", "true", "on", "1": return true
        case "no", "false", "off", "0": return false
        default: throw err(e.line, "\(e.key): expected yes or no, got '\(e.value)'")
        }
    }

    /// "90" (seconds), "30m", "12h", "7d", "2w"; 0 turns the setting off. Overflow is an error.
    private static func duration(_ e: JobFileReader.Entry, _ err: (Int, String) -> JobError) throws -> TimeInterval {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800]
        var digits = Substring(e.value)
        var unit = 1
        if let last = digits.last, let u = units[last] {
            unit = u
            digits = digits.dropLast()
        }
        guard let n = Int(digits), n >= 0 else {
            throw err(e.line, "\(e.key): expected a duration such as 90s, 30m, 12h, 7d or 2w, got '\(e.value)'")
        }
        let (seconds, overflow) = n.multipliedReportingOverflow(by: unit)
        guard !overflow, seconds <= 100 * 366 * 86400 else { throw err(e.line, "\(e.key): '\(e.value)' is too long") }
        return TimeInterval(seconds)
    }
}
