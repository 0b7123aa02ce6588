import ArgumentParser

/// `thin-backup`: the root of the command tree. Each subcommand lives in its own file.
struct RootCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "thin-backup",
        abstract: "Incremental backup and replication for device-mapper thin pools.",
        discussion: """
            Exit codes (every command):
              0   success
              1   failure (one line on stderr names what failed)
              3   run: some volumes failed, the others were backed up
              64  usage: a bad option, argument or job file
              75  busy: another run holds the pool, repository or job lock; retry later
            """,
        version: versionLine,
        subcommands: [
            // Each topic registers its command here (one line each).
            Dump.self,
            PoolCommand.self,
            DeltaCommand.self,
            SendCommand.self,
            ReceiveCommand.self,
            MergeCommand.self,
            VerifyCommand.self,
            ServeCommand.self,
            BackupCommand.self,
            ListCommand.self,
            RestoreCommand.self,
            PruneCommand.self,
            MigrateCommand.self,
            KeyCommand.self,
            RunCommand.self,
        ]
    )

    /// What `--version` prints (ArgumentParser, and ThinBackupMain's fast path for `--version` alone).
    static let versionLine = "thin-backup \(ThinBackupVersion.current)"
}
