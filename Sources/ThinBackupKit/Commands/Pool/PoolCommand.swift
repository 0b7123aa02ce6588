import ArgumentParser

/// `thin-backup pool …`: commands on a pool's metadata. Each subcommand lives in its own file here.
public struct PoolCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pool",
        abstract: "Inspect and change a thin pool's metadata.",
        subcommands: [
            Ls.self,
            Check.self,
        ]
    )

    public init() {}
}
