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

extension CommandConfiguration {
    /// The configuration of one of RootCommand's subcommands (each one's `configuration` ends with
    /// `.underRoot()`). `_superCommandName` names the root; ArgumentParser reads it only when the
    /// command is the root of what it parses, which is `ThinBackupMain.subcommandFastPath`: there it
    /// skips the completion-script check (which the full parse still does, and the fast path leaves
    /// to it). Parsed through RootCommand, as every help and error is, it changes nothing.
    func underRoot() -> CommandConfiguration {
        var c = self
        c._superCommandName = RootCommand._commandName
        return c
    }
}
