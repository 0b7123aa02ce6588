public import NIOHTTP1

/// What a request to the `serve` receiver asks for, decided from its head alone: the only
/// place hostile request text is interpreted (kept apart so it can be fuzzed: Fuzz/FuzzHTTP).
///
/// - `GET /metrics`: counters (no token needed);
/// - `GET /v1/devices/D/receive`: the status of device D;
/// - `PUT /v1/devices/D/receive` with `X-TB-Stream-Id` and `X-TB-Offset`: a stream for device D.
/// Every request needs `Authorization: Bearer TOKEN`. D and the offset are plain decimal numbers.
public enum ReceiverRequest: Equatable, Sendable {
    /// `GET /metrics`: counters for a Prometheus scraper (no token: they name no device or path).
    case metrics
    case status(device: UInt64)
    case receive(device: UInt64, streamID: String, offset: UInt64)

    /// Why a request is refused: the HTTP status, one line, extra response headers.
    public struct Rejection: Error, Equatable, Sendable {
        public let status: HTTPResponseStatus
        public let message: String
        public let headers: [String]
        init(_ status: HTTPResponseStatus, _ message: String, headers: [String] = []) {
            self.status = status
            self.message = message
            self.headers = headers
        }
    }

    /// Decides `head`; `token` is the bearer token senders must present.
    public static func parse(_ head: HTTPRequestHead, token: String, maxHeaderBytes: Int) -> Result<ReceiverRequest, Rejection> {
        let headerBytes = head.uri.utf8.count + head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        guard headerBytes <= maxHeaderBytes, head.headers.count <= 100 else {
            return .failure(Rejection(.init(statusCode: 431), "request headers too large"))
        }
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        if head.method == .GET, path == ReceiverWire.metricsPath { return .success(.metrics) }
        let presented = head.headers.first(name: ReceiverWire.authorization) ?? ""
        guard let presentedToken = ReceiverWire.token(inCredentials: presented), constantTimeEqual(String(presentedToken), token) else {
            return .failure(Rejection(.unauthorized, "missing or wrong bearer token", headers: ["WWW-Authenticate: \(ReceiverWire.bearer)"]))
        }
        guard let d = ReceiverWire.deviceText(inPath: path), let device = decimalNumber(d) else {
            return .failure(Rejection(.notFound, "no such resource (use \(ReceiverWire.pathTemplate))"))
        }
        switch head.method {
        case .GET:
            return .success(.status(device: device))
        case .PUT:
            guard let streamID = head.headers.first(name: ReceiverWire.streamID), (1...80).contains(streamID.utf8.count),
                  streamID.utf8.allSatisfy({ isHexDigit($0) || $0 == UInt8(ascii: "-") }) else {
                return .failure(Rejection(.badRequest, "missing or malformed \(ReceiverWire.streamID)"))
            }
            guard let offset = decimalNumber(Substring(head.headers.first(name: ReceiverWire.offset) ?? "0")) else {
                return .failure(Rejection(.badRequest, "malformed \(ReceiverWire.offset)"))
            }
            return .success(.receive(device: device, streamID: streamID, offset: offset))
        default:
            return .failure(Rejection(.methodNotAllowed, "use GET or PUT", headers: ["Allow: GET, PUT"]))
        }
    }
}

private func isHexDigit(_ c: UInt8) -> Bool {
    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
}

/// A plain decimal number: ASCII digits only (no sign, no spaces), at most 20 of them, within UInt64.
public func decimalNumber(_ s: Substring) -> UInt64? {
    guard !s.isEmpty, s.utf8.count <= 20, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
    return UInt64(s)
}

/// Compares two secrets in time that depends only on their lengths, not their contents.
public func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var diff = UInt8(x.count == y.count ? 0 : 1)
    let n = max(x.count, y.count)
    for i in 0..<n {
        let p = i < x.count ? x[i] : 0
        let q = i < y.count ? y[i] : 0
        diff |= p ^ q
    }
    return diff == 0
}
