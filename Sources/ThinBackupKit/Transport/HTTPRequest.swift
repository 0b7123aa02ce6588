/// One HTTP exchange, described without any libcurl type (CurlEasy performs it).
struct HTTPRequest {
    enum Body {
        case none
        /// A body of known size held in memory (S3 parts, XML documents).
        case bytes([UInt8])
        /// A body pulled piece by piece, of unknown length (sent chunked): the closure fills the
        /// buffer and returns how many bytes it wrote, 0 at the end; it may block.
        case stream((UnsafeMutableRawBufferPointer) throws -> Int)
    }

    var method: String
    var url: String
    var headers: [(String, String)] = []
    var body: Body = .none
    /// SigV4 signing by libcurl: provider string ("aws:amz:REGION:s3") and "KEY:SECRET".
    var sigV4: (provider: String, userPassword: String)? = nil
    var tls = TLSOptions()
    /// Seconds to establish a connection.
    var connectTimeout = NetworkTimeouts().connect
    /// Abort when fewer than 1 byte/s move for this many seconds (0 = never).
    var stallTimeout = NetworkTimeouts().stall

    /// Takes the timeouts of `t`.
    mutating func apply(_ t: NetworkTimeouts) {
        connectTimeout = t.connect
        stallTimeout = t.stall
    }

    init(method: String, url: String) {
        self.method = method
        self.url = url
    }
}

/// TLS settings: verification is on unless the user turns it off.
public struct TLSOptions: Sendable {
    public var verifyPeer = true
    /// A PEM bundle of trusted CAs instead of the system store (a private CA, a self-signed server).
    public var caFile: String? = nil
}

/// What came back: status, headers (names lower-cased) and, for requests without a body
/// consumer or for error answers, the body (capped at 1 MiB).
struct HTTPResponse {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]

    var isSuccess: Bool { (200...299).contains(status) }
    var bodyText: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Client-side timeouts of every HTTP exchange (libcurl: CONNECTTIMEOUT, LOW_SPEED_LIMIT/TIME).
public struct NetworkTimeouts: Sendable, Equatable {
    /// Seconds to establish a connection (TCP and TLS).
    public var connect = 30
    /// Seconds under 1 byte/s after which a transfer is abandoned (and retried): a stalled peer.
    /// Default 5 minutes, the receiver's idle timeout: a slow WAN moves bytes far more often.
    public var stall = 300
}
