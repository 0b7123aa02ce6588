import Foundation

/// Which backups prune keeps, per series (one device of one pool), as restic's --keep-* rules:
/// the newest `last` backups; the newest backup of each of the newest `daily` days that have
/// backups; likewise for ISO weeks and months (UTC). The newest backup is always kept: its
/// snapshot on the pool is the base of the next incremental.
public struct RetentionPolicy: Codable, Sendable, Equatable {
    public var last = 0
    public var daily = 0
    public var weekly = 0
    public var monthly = 0

    /// The kept backups of one series (any order in), with the reasons each is kept.
    public func keep(_ series: [BackupRecord]) -> [Int64: [String]] {
        let newestFirst = series.sorted { ($0.createdAt, $0.id ?? 0) > ($1.createdAt, $1.id ?? 0) }
        var reasons: [Int64: [String]] = [:]
        guard let newest = newestFirst.first else { return reasons }
        reasons[newest.id!, default: []].append("newest")
        for b in newestFirst.prefix(last) { reasons[b.id!, default: []].append("last") }
        var cal = Calendar(identifier: .iso8601)
        cal.timeZone = TimeZone(identifier: "UTC")!
        func bucket(_ n: Int, _ name: String, _ key: (Date) -> String) {
            var seen: [String] = []
            for b in newestFirst where seen.count < n {
                let k = key(b.date)
                if !seen.contains(k) {
                    seen.append(k)
                    reasons[b.id!, default: []].append("\(name) \(k)")
                }
            }
        }
        bucket(daily, "daily") { d in let c = cal.dateComponents([.year, .month, .day], from: d); return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!) }
        bucket(weekly, "weekly") { d in let c = cal.dateComponents([.yearForWeekOfYear, .weekOfYear], from: d); return String(format: "%04d-W%02d", c.yearForWeekOfYear!, c.weekOfYear!) }
        bucket(monthly, "monthly") { d in let c = cal.dateComponents([.year, .month], from: d); return String(format: "%04d-%02d", c.year!, c.month!) }
        return reasons
    }
}
