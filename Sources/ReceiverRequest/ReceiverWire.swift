/// The names of the `tb://` receiver protocol, spelled once for both sides: the sender
/// (`ReceiverSink` in ThinBackupKit) and the server (`ReceiverRequest.parse`).
///
/// `GET /v1/devices/D/receive` answers the device's receive status (JSON `ReceiveStatus`);
/// `PUT /v1/devices/D/receive` with `X-TB-Offset: N` and `X-TB-Stream-Id: ID` streams the bytes
/// from stream offset N on. Every request carries `Authorization: Bearer TOKEN`.
public enum ReceiverWire {
    public static let authorization = "Authorization"
    public static let bearer = "Bearer"
    public static let offset = "X-TB-Offset"
    public static let streamID = "X-TB-Stream-Id"

    /// The receiver's Prometheus metrics (no token needed).
    public static let metricsPath = "/metrics"

    /// How messages show the resource.
    public static let pathTemplate = "/v1/devices/N/receive"

    /// The resource of a device's receive.
    public static func path(device: UInt64) -> String { "/v1/devices/\(device)/receive" }

    /// The device part (D) of a receive resource's path (query already dropped), unchecked.
    public static func deviceText(inPath path: Substring) -> Substring? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        // "", "v1", "devices", D, "receive"
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "v1", parts[2] == "devices", parts[4] == "receive" else { return nil }
        return parts[3]
    }

    /// `Authorization`'s value for `token`.
    public static func credentials(_ token: String) -> String { "\(bearer) \(token)" }

    /// The token an `Authorization` value presents, if it is a bearer token.
    public static func token(inCredentials value: String) -> Substring? {
        value.hasPrefix("\(bearer) ") ? value.dropFirst(bearer.count + 1) : nil
    }
}

/// The JSON answer of `GET /v1/devices/D/receive`: the server writes it, the sender reads it.
public struct ReceiveStatus: Codable, Sendable {
    public var device: UInt64
    /// idle, receiving, interrupted, complete, refused, failed
    public var state: String
    /// receiving: bytes received so far; interrupted: the resume point.
    public var offset: UInt64
    public var streamID: String?
    public var message: String?
    /// Pool receivers: what `send --resume-from` takes to continue an interrupted receive.
    public var resumeToken: String?

    public init(device: UInt64, state: String, offset: UInt64, streamID: String? = nil, message: String? = nil, resumeToken: String? = nil) {
        (self.device, self.state, self.offset) = (device, state, offset)
        (self.streamID, self.message, self.resumeToken) = (streamID, message, resumeToken)
    }
}
