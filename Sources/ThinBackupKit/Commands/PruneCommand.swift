import ArgumentParser
import Foundation

/// `thin-backup prune`: applies a retention policy to a repository.
struct PruneCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove backups a retention policy does not keep, without breaking any kept chain.",
        discussion: """
            Per device: the newest --keep-last backups, and the newest backup of each of the newest --keep-daily \
            days, --keep-weekly ISO weeks and --keep-monthly months (UTC) are kept; the newest backup always is. \
            A kept incremental whose base is removed is consolidated: rewritten as an increment of its nearest \
            kept ancestor, or as a full stream. Exit codes: 0 done, 1 failed, 64 usage, 75 locked.
            """
    ).underRoot()

    @Option(help: ArgumentHelp("Repository.", valueName: "dest")) public var repo: String
    @Option(help: "Keep the newest N backups.") public var keepLast = 0
    @Option(help: "Keep the newest backup of each of the newest N days.") public var keepDaily = 0
    @Option(help: "Keep the newest backup of each of the newest N ISO weeks.") public var keepWeekly = 0
    @Option(help: "Keep the newest backup of each of the newest N months.") public var keepMonthly = 0
    @Flag(help: "Show what would be removed and consolidated; change nothing.") public var dryRun = false
    @OptionGroup public var net: RepositoryTransportOptions
    @OptionGroup public var key: KeyOptions
    @OptionGroup public var output: ReportOptions

    public func validate() throws {
        if [keepLast, keepDaily, keepWeekly, keepMonthly].contains(where: { $0 < 0 }) { throw ValidationError("--keep-* values must be >= 0") }
    }

    public func run() throws {
        var req = PruneRequest(repo: repo, policy: RetentionPolicy(last: keepLast, daily: keepDaily, weekly: keepWeekly, monthly: keepMonthly))
        req.dryRun = dryRun
        req.quiet = output.quiet
        req.options = net.transportOptions()
        req.keyring = try key.keyring()
        let r = try runPrune(req)
        let ids = { (xs: [Int64]) in xs.isEmpty ? "none" : xs.map(String.init).joined(separator: ",") }
        let rebased: [String] = r.rebased.map { b in "\(b.id)→" + (b.newBase.map { "on \($0)" } ?? "full") }
        let consolidated = "consolidated \(r.rebased.count)" + (rebased.isEmpty ? "" : " (" + rebased.joined(separator: ", ") + ")")
        let freed = r.freedBytes >= 0 ? "\(formatBytes(UInt64(r.freedBytes))) freed"
                                      : "\(formatBytes(UInt64(-r.freedBytes))) more used"
        let verb = dryRun ? "would remove" : "removed"
        try output.report(r, line: "\(verb) \(r.removed.count) backups (\(ids(r.removed))), kept \(r.kept.count); \(consolidated); \(freed)")
    }
}
