import ArgumentParser

/// `thin-backup pool …`: commands on a pool's metadata. Each subcommand lives in its own file here.
struct PoolCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pool",
        abstract: "Inspect and change a thin pool's metadata.",
        subcommands: [
            Ls.self,
            Check.self,
            Create.self,
            CreateThin.self,
            Snapshot.self,
            Write.self,
            Read.self,
            Discard.self,
            Delete.self,
            Info.self,
            ReserveMetadataSnap.self,
            ReleaseMetadataSnap.self,
            Resize.self,
            SetOptions.self,
        ]
    ).underRoot()
}
