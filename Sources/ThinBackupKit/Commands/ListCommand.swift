import ArgumentParser
import Foundation

/// `thin-backup list`: the backups in a repository.
struct ListCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the backups in a repository (from its catalog).").underRoot()

    @Option(help: ArgumentHelp("Repository.", valueName: "dest")) public var repo: String
    @Option(help: ArgumentHelp("Only this thin device.", valueName: "id")) public var dev: UInt64?
    @Flag(help: "Print the catalog as JSON.") public var json = false
    @OptionGroup public var net: RepositoryTransportOptions
    @OptionGroup public var key: KeyOptions

    public func run() throws {
        let repo = try BackupRepository(self.repo, options: net.transportOptions(), keyring: try key.keyring())
        defer { repo.close() }
        let all = try repo.catalog.all().filter { dev == nil || $0.dev == dev }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            print(String(decoding: try enc.encode(all.map(ListedBackup.init)), as: UTF8.self))
            return
        }
        print("ID    TAKEN                 DEV  KIND  BASE  DATA        STREAM      OBJECT")
        for b in all {
            let cols = [pad(String(b.id!), 5), pad(WorkflowClock.format(b.date), 21), pad(String(b.dev), 4),
                        pad(b.isFull ? "full" : "incr", 5), pad(b.baseID.map(String.init) ?? "-", 5),
                        pad(formatBytes(b.rawBytes), 11), pad(formatBytes(b.streamBytes), 11), b.object]
            print(cols.joined(separator: " "))
        }
    }

    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
}

/// One backup as `list --json` prints it.
struct ListedBackup: Codable {
    var id: Int64
    var createdAt: String
    var poolID: String
    var dev: UInt64
    var snapshot: UInt64
    var kind: String
    var base: Int64?
    var rawBytes: UInt64
    var streamBytes: UInt64
    var digest: String
    var object: String

    init(_ b: BackupRecord) {
        id = b.id!; createdAt = WorkflowClock.format(b.date); poolID = b.poolID; dev = b.dev; snapshot = b.snapDev
        kind = b.isFull ? "full" : "incremental"; base = b.baseID; rawBytes = b.rawBytes; streamBytes = b.streamBytes
        digest = b.digest; object = b.object
    }
}
