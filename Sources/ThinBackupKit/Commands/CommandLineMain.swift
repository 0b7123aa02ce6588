import ArgumentParser
import PoolCore
#if canImport(Glibc)
import Glibc
#endif

/// Runs the command line: parse, run, and turn any failure into one line on stderr with the
/// exit code `ExitStatus` chooses (a parse error: ArgumentParser's message, exit 64; a help
/// request, `--help` or `help SUB`: the help on stdout, exit 0).
public enum ThinBackupMain {
    public static func run(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Int32 {
        // `thin-backup --version` alone is answered before ArgumentParser builds the command tree by
        // reflection (two thirds of the work main did for it; docs/BENCHMARKS.md). Same text, same
        // exit status as ArgumentParser's own answer (VersionTests compares the two).
        if let line = versionFastPath(arguments) {
            var text = line + "\n"
            text.withUTF8 { buf in _ = Glibc.write(1, buf.baseAddress, buf.count) }
            return ExitStatus.ok
        }
        // Cleanups registered by commands (e.g. a reserved metadata snapshot) also run on SIGINT/SIGTERM/SIGHUP.
        Interrupts.shared.install()
        // `receive` and `send` in their plain forms are parsed without ArgumentParser
        // (ReceiveDirectParse, SendDirectParse) and run as their commands' `run` runs them.
        if let receive = ReceiveDirectParse.parse(arguments) {
            return execute(isHelp: { false }) { try receive.run() }
        }
        if let send = SendDirectParse.parse(arguments) {
            return execute(isHelp: { false }) { try send.run() }
        }
        var command: any ParsableCommand
        do {
            command = try parse(arguments)
        } catch {
            return finish(ExitStatus.argumentParser(error))
        }
        // `help SUB` parses into ArgumentParser's own `help` command, whose run() throws the
        // help request: ArgumentParser renders it, as it does `--help` at parse time.
        return execute(isHelp: { type(of: command).configuration.commandName == "help" }) { try command.run() }
    }

    /// Runs a parsed command: exit 0, or its error's line and exit code (`isHelp`: the error is
    /// ArgumentParser's help request, which it renders). A signal's cleanups, once begun, end the
    /// process with the signal's status; a command that ends meanwhile (its reads cut short by a
    /// released snapshot, say) waits for that and prints nothing.
    private static func execute(isHelp: () -> Bool, _ body: () throws -> Void) -> Int32 {
        do {
            try body()
            Interrupts.shared.parkIfInterrupted()
            return ExitStatus.ok
        } catch {
            Interrupts.shared.parkIfInterrupted()
            if isHelp() { return finish(ExitStatus.argumentParser(error)) }
            return finish(ExitStatus.of(error))
        }
    }

    /// The command `arguments` name, parsed as `RootCommand.parseAsRoot` parses it (the same
    /// command, the same errors, the same help). When the first argument names one of the root's
    /// subcommands, that subcommand's own tree is parsed first (`subcommandFastPath`): the root's
    /// tree is not built by reflection, nor the completion-script request looked for in it. Any
    /// other outcome (an error, a help, version or completion request) is left to the full parse.
    static func parse(_ arguments: [String]) throws -> any ParsableCommand {
        if let command = subcommandFastPath(arguments) { return command }
        return try RootCommand.parseAsRoot(arguments)
    }

    /// The command parsed from the tree of the subcommand named by `arguments.first`, or nil when
    /// that parse did not give a command that `RootCommand.parseAsRoot` would give too: no such
    /// subcommand (`help`, an option, a typo), a word ArgumentParser handles at the root
    /// (`--generate-completion-script`, `---completion`, `--experimental-dump-help`), a parse or
    /// validation error, or a help request (`-h`, `--help`, `help` inside `pool`). The subcommand
    /// has no `--version` of its own, so `--version` left unconsumed is an error here and the full
    /// parse answers it. The subcommands carry `_superCommandName` (`RootCommand.subcommand`), so
    /// this parse skips ArgumentParser's completion-script check, which the full parse still does.
    static func subcommandFastPath(_ arguments: [String]) -> (any ParsableCommand)? {
        guard let name = arguments.first,
              let sub = RootCommand.configuration.subcommands.first(where: {
                  $0._commandName == name || $0.configuration.aliases.contains(name)
              })
        else { return nil }
        let rest = Array(arguments.dropFirst())
        for a in rest where a.hasPrefix("--generate-completion-script") || a == "---completion"
            || a.hasPrefix("--experimental-dump-help") {
            return nil
        }
        guard let command = try? sub.parseAsRoot(rest),
              type(of: command).configuration.commandName != "help"
        else { return nil }
        return command
    }

    /// The line `--version` prints when it is the only argument; nil for anything else, which
    /// ArgumentParser parses as before.
    static func versionFastPath(_ arguments: [String]) -> String? {
        arguments == ["--version"] ? RootCommand.versionLine : nil
    }

    private static func finish(_ s: (code: Int32, message: String)) -> Int32 {
        if !s.message.isEmpty {
            if s.code == ExitStatus.ok { print(s.message) } else { writeStderr(s.message + "\n") }
        }
        return s.code
    }

    public static func writeStderr(_ s: String) {
        var s = s
        s.withUTF8 { buf in _ = Glibc.write(2, buf.baseAddress, buf.count) }
    }
}
