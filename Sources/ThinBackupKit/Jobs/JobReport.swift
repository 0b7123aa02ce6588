/// What `run` did (`--json`), one entry per volume in the job file's order.
public struct JobReport: Codable, Sendable {
    public struct VolumeResult: Codable, Sendable {
        public var volume: String
        public var ok: Bool
        public var backup: Int64?
        public var kind: String?
        public var bytesRead: UInt64?
        public var bytesWritten: UInt64?
        public var backupsKept: Int?
        public var seconds: Double
        public var error: String?
    }
    public struct PruneResult: Codable, Sendable {
        public var ok: Bool
        public var removed: [Int64]
        public var error: String?
    }
    public struct VerifyResult: Codable, Sendable {
        public var ok: Bool
        public var deep: Bool
        public var streamsChecked: Int
        public var problems: [String]
    }
    public var job: String
    public var file: String
    public var startedAt: String
    public var seconds: Double
    public var volumes: [VolumeResult]
    /// nil: the job sets no retention.
    public var prune: PruneResult?
    /// nil: no verify was due.
    public var verify: VerifyResult?
    public var exitCode: Int32

    /// 0 when everything succeeded; `ExitStatus.partial` when some volumes failed and
    /// others were backed up; 1 when every volume failed, or the prune or the verify failed.
    static func exitCode(volumes: [VolumeResult], prune: PruneResult?, verify: VerifyResult?) -> Int32 {
        let failed = volumes.filter { !$0.ok }.count
        if failed == volumes.count || prune?.ok == false || verify?.ok == false { return 1 }
        return failed > 0 ? ExitStatus.partial : 0
    }
}
