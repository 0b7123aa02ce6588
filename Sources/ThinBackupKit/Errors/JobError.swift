/// The one error type of the job layer (send, receive, backup, …): what kind of failure
/// (its exit code is chosen from it in `ExitStatus`), one line for the user, and the error
/// that caused it, if any.
public struct JobError: Error, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The job failed (exit 1).
        case failure
        /// The request itself is wrong: bad option values or combinations (exit 64).
        case usage
        /// Another run holds the pool or repository lock (exit 75).
        case busy
        /// `run`: some volumes failed, the others were backed up (exit 3).
        case partial
    }

    public let code: Code
    public let message: String
    public let cause: (any Error)?

    public init(_ code: Code = .failure, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public init(_ message: String, cause: (any Error)? = nil) {
        self.init(.failure, message, cause: cause)
    }

    public var description: String { message }
}
