import ArgumentParser

/// `thin-backup`: the root of the command tree. Each subcommand lives in its own file.
public struct RootCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "thin-backup",
        abstract: "Incremental backup and replication for device-mapper thin pools.",
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
        ]
    )

    public init() {}
}
