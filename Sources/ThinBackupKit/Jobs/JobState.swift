import Foundation
import PoolCore

/// What a job remembers between runs (`STATE-DIR/NAME.state.json`): when it last succeeded and
/// verified, and each volume's last good backup. The metrics file is written from it, so a
/// failed run still reports the time of the last success.
public struct JobState: Codable, Equatable, Sendable {
    public struct Volume: Codable, Equatable, Sendable {
        public var lastStart: Double?
        public var lastSuccess: Double?
        public var lastBackupID: Int64?
        public var lastSeconds: Double?
        public var bytesRead: UInt64 = 0
        public var bytesWritten: UInt64 = 0
        public var backupsKept: Int = 0
        public var lastRunOK = false
    }
    public var lastStart: Double?
    public var lastEnd: Double?
    /// The last run in which every volume, the prune and the verify (when due) succeeded.
    public var lastSuccess: Double?
    public var lastVerify: Double?
    public var lastExitCode: Int32?
    public var volumes: [String: Volume] = [:]

    public init() {}

    static func path(_ job: JobConfig) -> String { "\(job.stateDir)/\(job.name).state.json" }

    /// The saved state, or a fresh one when the job never ran. A damaged file is an error (not silently reset).
    static func load(_ job: JobConfig) throws -> JobState {
        let p = path(job)
        guard let data = FileManager.default.contents(atPath: p) else { return JobState() }
        do {
            return try JSONDecoder().decode(JobState.self, from: data)
        } catch {
            throw JobError("job \(job.name): the state file \(p) is damaged (\(error)); move it away to start afresh")
        }
    }

    /// Written to a temporary file and renamed over the old one.
    func save(_ job: JobConfig) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        try atomicWrite(try enc.encode(self), to: Self.path(job))
    }
}

/// Writes `data` to `path` through PATH.tmp-PID (`replaceFile`, no fault steps): readers see the
/// old or the new file, never a part.
func atomicWrite(_ data: Data, to path: String) throws {
    do { try replaceFile(path, with: data, temporary: "\(path).tmp-\(getpid())", syncStep: false) } catch {
        throw JobError("cannot write \(path): \(error)")
    }
}
