import ReceiverRequest

/// Where a stream goes to or comes from, as the user wrote it on the command line:
/// a path, `-` (stdin/stdout), `http(s)://…`, `s3://BUCKET/KEY`, or a `serve` receiver
/// `tb://HOST:PORT[/DEVICE]` (`tbs://` with TLS).
public enum Endpoint: Equatable, Sendable {
    case stdio
    case file(String)
    case http(url: String)
    case s3(bucket: String, key: String)
    case receiver(host: String, port: Int, tls: Bool, device: UInt64?)

    public init(parsing text: String) throws {
        if text == "-" {
            self = .stdio
            return
        }
        guard let schemeEnd = text.range(of: "://") else {
            guard !text.isEmpty else { throw TransportError(.usage, "empty destination") }
            self = .file(text)
            return
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        let rest = String(text[schemeEnd.upperBound...])
        switch scheme {
        case "http", "https":
            guard let host = rest.split(separator: "/", maxSplits: 1).first, !host.isEmpty else {
                throw TransportError(.usage, "\(text): no host in the URL")
            }
            self = .http(url: text)
        case "s3":
            let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TransportError(.usage, "\(text): expected s3://BUCKET/KEY")
            }
            self = .s3(bucket: String(parts[0]), key: String(parts[1]))
        case "tb", "tbs":
            let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            let hostPort = String(parts[0])
            guard let colon = hostPort.lastIndex(of: ":"), let port = decimalNumber(hostPort[hostPort.index(after: colon)...]),
                  (1...65535).contains(port), colon != hostPort.startIndex else {
                throw TransportError(.usage, "\(text): expected \(scheme)://HOST:PORT")
            }
            var host = String(hostPort[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            var device: UInt64? = nil
            if parts.count == 2 && !parts[1].isEmpty {
                // Digits only, as the receiver takes them (UInt64("+2") would be 2: refused there, so here too).
                guard let d = decimalNumber(parts[1]) else {
                    throw TransportError(.usage, "\(text): the device part '\(parts[1])' is not a device number (digits only: \(scheme)://HOST:PORT/DEVICE)")
                }
                device = d
            }
            self = .receiver(host: host, port: Int(port), tls: scheme == "tbs", device: device)
        case "file":
            self = .file(rest)
        default:
            throw TransportError(.usage, "\(text): unknown scheme '\(scheme)' (use a path, -, http(s)://, s3://, tb:// or tbs://)")
        }
    }

    /// True for destinations reached over the network.
    public var isRemote: Bool {
        switch self {
        case .stdio, .file: return false
        default: return true
        }
    }
}
