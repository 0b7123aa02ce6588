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
        var command: any ParsableCommand
        do {
            command = try RootCommand.parseAsRoot(arguments)
        } catch {
            return finish(ExitStatus.argumentParser(error))
        }
        // A signal's cleanups, once begun, end the process with the signal's status; a command
        // that ends meanwhile (its reads cut short by a released snapshot, say) waits for that
        // and prints nothing.
        do {
            try command.run()
            Interrupts.shared.parkIfInterrupted()
            return ExitStatus.ok
        } catch {
            Interrupts.shared.parkIfInterrupted()
            // `help SUB` parses into ArgumentParser's own `help` command, whose run() throws the
            // help request: ArgumentParser renders it, as it does `--help` at parse time.
            if type(of: command).configuration.commandName == "help" { return finish(ExitStatus.argumentParser(error)) }
            return finish(ExitStatus.of(error))
        }
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
