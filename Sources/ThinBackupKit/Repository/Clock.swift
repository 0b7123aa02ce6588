import Foundation
#if canImport(Glibc)
import Glibc
#endif

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

    /// "2026-01-31T02:00:00Z" (UTC, whole seconds, as ISO8601DateFormatter writes it), from the C
    /// library's calendar: a formatter loads the time-zone database and ICU, about a millisecond
    /// of every command that records a time.
    public static func format(_ d: Date) -> String {
        let t = d.timeIntervalSince1970.rounded(.down)
        guard t.isFinite, abs(t) < 1e15 else { return ISO8601DateFormatter().string(from: d) }
        var secs = time_t(t)
        var tm = Glibc.tm()
        guard gmtime_r(&secs, &tm) != nil, tm.tm_year + 1900 >= 0, tm.tm_year + 1900 <= 9999 else {
            return ISO8601DateFormatter().string(from: d)
        }
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let year = String(tm.tm_year + 1900)
        return String(repeating: "0", count: 4 - year.count) + year + "-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T"
            + "\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))Z"
    }
}
