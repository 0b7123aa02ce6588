import Foundation

/// What transports need besides the destination: command-line options and the environment.
public struct TransportOptions: Sendable {
    /// S3: a custom endpoint (MinIO, Ceph RGW, moto), "http(s)://host:port".
    public var s3Endpoint: String?
    /// S3: the multipart part size (at least 5 MiB).
    public var partSize: Int = 8 << 20
    /// tb://: a file holding the receiver's bearer token.
    public var tokenFile: String?
    /// tb://: the device the receiver replays into (the sent snapshot's id unless `--as`).
    public var targetDevice: UInt64?
    public var retry = RetryPolicy()
    public var tls = TLSOptions()
    public var timeouts = NetworkTimeouts()
    /// Where credentials come from (a parameter so tests need not touch the process environment):
    /// the process environment unless set. Read when asked for, not when the options are made:
    /// building the dictionary cost every receive about 0.3 ms at start-up, and only S3 reads it.
    public var environment: [String: String] {
        get { givenEnvironment ?? ProcessInfo.processInfo.environment }
        set { givenEnvironment = newValue }
    }
    private var givenEnvironment: [String: String]?

    public init() {}

    /// The token from `tokenFile`, trimmed; a clear error when missing or empty.
    func token() throws -> String {
        guard let path = tokenFile else {
            throw TransportError(.usage, "a tb:// receiver needs --token-file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TransportError(.usage, "cannot read the token file \(path)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: " \t\r\n")
        guard !token.isEmpty else { throw TransportError(.usage, "the token file \(path) is empty") }
        return token
    }
}
