/// The names of the `tb://` receiver protocol, spelled once for both sides: the sender
/// (`ReceiverSink`) and the server (`ReceiverHandler`).
///
/// `GET /v1/devices/D/receive` answers the device's receive status (JSON `ReceiveStatus`);
/// `PUT /v1/devices/D/receive` with `X-TB-Offset: N` and `X-TB-Stream-Id: ID` streams the bytes
/// from stream offset N on. Every request carries `Authorization: Bearer TOKEN`.
enum ReceiverWire {
    static let authorization = "Authorization"
    static let bearer = "Bearer"
    static let offset = "X-TB-Offset"
    static let streamID = "X-TB-Stream-Id"

    /// The receiver's Prometheus metrics (no token needed).
    static let metricsPath = "/metrics"

    /// How messages show the resource.
    static let pathTemplate = "/v1/devices/N/receive"

    /// The resource of a device's receive.
    static func path(device: UInt64) -> String { "/v1/devices/\(device)/receive" }

    /// The device a request path names (its query dropped), if it is a receive resource.
    static func device(inPath uri: String) -> UInt64? {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
            .split(separator: "/", omittingEmptySubsequences: false)
        // "", "v1", "devices", D, "receive"
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "v1", parts[2] == "devices", parts[4] == "receive" else { return nil }
        return UInt64(parts[3])
    }

    /// `Authorization`'s value for `token`.
    static func credentials(_ token: String) -> String { "\(bearer) \(token)" }

    /// The token an `Authorization` value presents, if it is a bearer token.
    static func token(inCredentials value: String) -> Substring? {
        value.hasPrefix("\(bearer) ") ? value.dropFirst(bearer.count + 1) : nil
    }
}
