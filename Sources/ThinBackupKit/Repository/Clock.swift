import Foundation

/// The time workflows record and prune by: now, or THIN_BACKUP_NOW / --now (tests, replays).
public enum WorkflowClock {
    /// Parses "2026-01-31T02:00:00Z", "2026-01-31" or "@SECONDS".
    public static func parse(_ s: String) -> Date? {
        if s.hasPrefix("@"), let t = Double(s.dropFirst()) { return Date(timeIntervalSince1970: t) }
        let f = ISO8601DateFormatter()
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withFullDate]
        return f.date(from: s)
    }

    /// `given` (a --now value), else $THIN_BACKUP_NOW, else the real time.
    public static func now(_ given: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Date {
        if let s = given ?? environment["THIN_BACKUP_NOW"] {
            guard let d = parse(s) else {
                throw JobError(.usage, "not a time: \(s) (use 2026-01-31T02:00:00Z, 2026-01-31 or @SECONDS)")
            }
            return d
        }
        return Date()
    }

    public static func format(_ d: Date) -> String { ISO8601DateFormatter().string(from: d) }
}
