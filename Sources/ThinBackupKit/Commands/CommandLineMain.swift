import ArgumentParser
import PoolCore
#if canImport(Glibc)
import Glibc
#endif

/// Runs the command line: parse, run, and turn any failure into one line on
/// stderr with exit code 1 (usage errors: ArgumentParser's message, exit 64).
public enum ThinBackupMain {
    public static func run(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Int32 {
        // Cleanups registered by commands (e.g. a reserved metadata snapshot) also run on SIGINT/SIGTERM/SIGHUP.
        Interrupts.shared.install()
        do {
            var command = try RootCommand.parseAsRoot(arguments)
            try command.run()
            return 0
        } catch let error as CommandFailure {
            writeStderr("thin-backup: \(error.message)\n")
            return error.exitCode
        } catch let error as PoolError {
            // Busy (another process holds the pool) is EX_TEMPFAIL, as for a held lock.
            writeStderr("thin-backup: \(error)\n")
            if case .busy = error { return lockedExitCode }
            return 1
        } catch where isOperational(error) {
            writeStderr("thin-backup: \(String(describing: error))\n")
            return 1
        } catch {
            let code = RootCommand.exitCode(for: error)
            let message = RootCommand.fullMessage(for: error)
            if !message.isEmpty {
                if code == .success { print(message) } else { writeStderr(message + "\n") }
            }
            return code.rawValue
        }
    }

    /// Errors of our own modules are operational failures; ArgumentParser's are not.
    static func isOperational(_ error: any Error) -> Bool {
        let type = String(reflecting: Swift.type(of: error))
        return !type.hasPrefix("ArgumentParser.")
    }

    public static func writeStderr(_ s: String) {
        var s = s
        s.withUTF8 { buf in _ = Glibc.write(2, buf.baseAddress, buf.count) }
    }
}

/// A failure with its own message and exit code, thrown by commands.
public struct CommandFailure: Error, CustomStringConvertible {
    public let message: String
    public let exitCode: Int32
    public init(_ message: String, exitCode: Int32 = 1) {
        self.message = message
        self.exitCode = exitCode
    }
    public var description: String { message }
}
