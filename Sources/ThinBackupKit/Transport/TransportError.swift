import Foundation

/// A failure moving bytes to or from a network (or local) target: one line for the user,
/// plus what a retry loop needs to know.
public struct TransportError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Could not connect, connection reset or cut, timeout: worth retrying.
        case connection
        /// The server answered with an HTTP status outside 2xx.
        case http(status: Int)
        /// Certificate or TLS handshake failure (never retried).
        case tls
        /// A bad URL, option or credential: fix the command line.
        case usage
        /// The server's answer made no sense (missing header, bad XML, wrong range).
        case protocolViolation
        /// The local side of the transfer (the stream producer or consumer) failed.
        case local
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// Connection errors and the server errors that mean "try again later".
    public var isRetryable: Bool {
        switch kind {
        case .connection: return true
        case .http(let status): return status == 408 || status == 429 || (500...599).contains(status) && status != 501
        default: return false
        }
    }
}

/// Exponential backoff between attempts: 0.2 s, 0.4 s, … capped at `maxDelay`.
public struct RetryPolicy: Sendable {
    /// Total attempts including the first (1 = never retry).
    public var attempts: Int
    public var baseDelay: Double
    public var maxDelay: Double

    public init(attempts: Int = 6, baseDelay: Double = 0.2, maxDelay: Double = 5) {
        self.attempts = max(1, attempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    public static let none = RetryPolicy(attempts: 1)

    func delay(beforeAttempt n: Int) -> Double {
        min(maxDelay, baseDelay * Double(1 << min(n - 1, 20)))
    }

    /// Runs `body` until it succeeds, a non-retryable error is thrown, or the attempts run out.
    /// `body` gets the attempt number (1-based).
    func run<T>(_ body: (Int) throws -> T) throws -> T {
        var attempt = 1
        while true {
            do {
                return try body(attempt)
            } catch let e as TransportError where e.isRetryable && attempt < attempts {
                sleepSeconds(delay(beforeAttempt: attempt))
                attempt += 1
            }
        }
    }
}

func sleepSeconds(_ s: Double) {
    guard s > 0 else { return }
    Thread.sleep(forTimeInterval: s)
}

