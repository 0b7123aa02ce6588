import ArgumentParser
import Testing
@testable import ThinBackupKit

/// `ThinBackupMain.parse` parses a subcommand's own tree when the first argument names one
/// (`subcommandFastPath`) and leaves everything else to `RootCommand.parseAsRoot`. Its outcome must
/// be ArgumentParser's own for every argument list: the same command with the same values, or the
/// same help request, or the same error text and exit code.
@Suite("Subcommands are parsed without the root's tree, with ArgumentParser's own outcome")
struct ParseFastPathTests {
    /// What a parse gave: the command's type and every stored value (`dump`), or the exit code
    /// and full message ArgumentParser gives for the error (what ThinBackupMain prints).
    static func outcome(_ parse: () throws -> any ParsableCommand) -> String {
        do {
            let command = try parse()
            var text = "command \(type(of: command))\n"
            dump(command, to: &text)
            return text
        } catch {
            let s = ExitStatus.argumentParser(error)
            return "error \(s.code)\n\(s.message)"
        }
    }

    static let delta = ["delta", "--metadata", "/m", "--thin1", "2", "--thin2", "1"]

    /// Parsed by the fast path (it must be taken: that is its point).
    static let parsedAlone: [[String]] = [
        delta + ["--changes-only"],
        ["delta", "--pool", "/p", "--snap1", "1", "--snap2", "2", "--format", "json", "-m"],
        ["delta", "--pool", "/p", "--snap1", "1", "--snap2", "2", "-m", "7", "--verbose"],
        ["pool", "ls", "--pool", "/p", "-o", "DEV,MAPPED_BLOCKS", "--no-headers"],
        ["pool", "create", "--pool", "/p", "--data-size", "1G"],
        ["pool"],
        ["send", "--pool", "/p", "--snap", "2", "--from", "1", "--to", "/x", "--quiet"],
        ["receive", "--pool", "/p", "--from", "-", "--as", "9"],
        ["dump", "--metadata", "/m", "--dev-id", "1", "--dev-id", "3", "--skip-mappings"],
        ["list", "--repo", "/r", "--json"],
        ["key", "create", "--to", "/k"],
        ["key", "show-id", "/k"],
        ["key"],
        // An option's value that looks like a subcommand or `help`.
        ["key", "show-id", "help"],
        ["list", "--repo", "delta"],
    ]

    /// Left to the full parse: help, version and completion requests, errors, no subcommand first.
    static let leftToRoot: [[String]] = [
        [], ["--help"], ["-h"], ["help"], ["help", "delta"], ["help", "pool", "create"], ["--version", "delta"],
        ["delta"], ["delta", "--help"], ["delta", "-h"], ["delta", "-help"], delta + ["-h"], delta + ["--help"],
        ["delta", "--version"], delta + ["--version"], ["send", "--version"], ["pool", "ls", "--version"],
        delta + ["--generate-completion-script", "bash"], delta + ["--generate-completion-script"],
        ["delta", "--generate-completion-script=zsh"], delta + ["--experimental-dump-help"],
        ["delta", "---completion", "--", "--thin1", "0", "0"],
        ["delta", "--metadata", "/m", "--thin1", "x", "--thin2", "1"],
        ["delta", "--thin1", "1", "--thin2", "2"],
        delta + ["--verbose", "--format", "json"],
        delta + ["--format", "yaml"],
        delta + ["--bogus"], delta + ["extra"], delta + ["--thin1"],
        ["pool", "help"], ["pool", "help", "create"], ["pool", "create", "--help"], ["pool", "nosuch"],
        ["pool", "create", "--pool", "/p", "--data-size", "lots"],
        ["key", "show-id"], ["key", "create", "--to", "/k", "-h"],
        ["deltas", "--metadata", "/m"], ["Delta"], ["--pool", "/p", "delta"],
    ]

    @Test func sameOutcomeAsArgumentParser() {
        for args in Self.parsedAlone + Self.leftToRoot {
            let mine = Self.outcome { try ThinBackupMain.parse(args) }
            let theirs = Self.outcome { try RootCommand.parseAsRoot(args) }
            #expect(mine == theirs, "\(args)")
        }
    }

    @Test func fastPathTakenForCommands() {
        for args in Self.parsedAlone {
            let fast = ThinBackupMain.subcommandFastPath(args)
            #expect(fast != nil, "\(args)")
            if let fast {
                #expect(Self.outcome { fast } == Self.outcome { try RootCommand.parseAsRoot(args) }, "\(args)")
            }
        }
    }

    @Test func fastPathDeclinesEverythingElse() {
        for args in Self.leftToRoot {
            #expect(ThinBackupMain.subcommandFastPath(args) == nil, "\(args)")
        }
    }

    /// Every subcommand of the root skips the completion-script check when parsed alone, and that
    /// leaves the help rendered through the root as it was (one `thin-backup`, no second).
    @Test func subcommandsNameTheRoot() {
        for sub in RootCommand.configuration.subcommands {
            #expect(sub.configuration._superCommandName == "thin-backup", "\(sub)")
        }
        let help = RootCommand.helpMessage(for: DeltaCommand.self)
        #expect(help.contains("USAGE: thin-backup delta "), "\(help)")
        #expect(!help.contains("thin-backup thin-backup"))
        let pool = RootCommand.helpMessage(for: PoolCommand.self)
        #expect(pool.contains("See 'thin-backup help pool <subcommand>'"), "\(pool)")
        #expect(!pool.contains("thin-backup thin-backup"))
    }
}
