import ArgumentParser
import PoolCore

/// The one map from how a command ended to the process's exit code and its stderr line:
/// 0 ok, 1 failure, 3 partial (`run`: some volumes failed), 64 usage, 75 busy (another run
/// holds the pool, repository or job lock). README's "Exit codes" table lists them for users.
public enum ExitStatus {
    public static let ok: Int32 = 0
    public static let failure: Int32 = 1
    public static let partial: Int32 = 3
    public static let usage: Int32 = 64
    public static let busy: Int32 = 75

    public static func code(_ c: JobError.Code) -> Int32 {
        switch c {
        case .failure: return failure
        case .usage: return usage
        case .busy: return busy
        case .partial: return partial
        }
    }

    /// The exit code and stderr text for an error a command's `run()` threw.
    public static func of(_ error: any Error) -> (code: Int32, message: String) {
        switch error {
        case let e as JobError:
            return (code(e.code), "thin-backup: \(e.message)")
        case let e as PoolError:
            // Busy (another process holds the pool) is EX_TEMPFAIL, as for a held lock.
            if case .busy = e { return (busy, "thin-backup: \(e)") }
            return (failure, "thin-backup: \(e)")
        case let e as TransportError where e.kind == .usage:
            return (usage, "thin-backup: \(e.message)")
        case is ValidationError, is CleanExit, is ExitCode:
            return argumentParser(error)
        default:
            return (failure, "thin-backup: \(error)")
        }
    }

    /// ArgumentParser's own code and text (usage errors, --help, --version).
    public static func argumentParser(_ error: any Error) -> (code: Int32, message: String) {
        (RootCommand.exitCode(for: error).rawValue, RootCommand.fullMessage(for: error))
    }
}
