import ArgumentParser

/// Options of network destinations and sources (http(s)://, s3://, tb://), shared by send,
/// receive and merge.
struct NetworkOptions: ParsableArguments {
    @Option(help: ArgumentHelp("File holding the bearer token of a tb:// receiver.", valueName: "file"))
    public var tokenFile: String?

    @Option(help: ArgumentHelp("S3 endpoint for MinIO, Ceph RGW or moto (default: AWS).", valueName: "http(s)://host[:port]"))
    public var endpoint: String?

    @Option(help: ArgumentHelp("S3 multipart part size (at least 5M).", valueName: "size"))
    public var partSize = ByteSize(bytes: 8 << 20)

    @Option(help: ArgumentHelp("CA bundle (PEM) to verify TLS servers with, instead of the system's.", valueName: "file"))
    public var caFile: String?

    @Option(help: "Attempts per request on connection errors (with backoff).")
    public var retries: Int = 6

    @Option(help: ArgumentHelp("Seconds to establish a connection.", valueName: "seconds"))
    public var connectTimeout: Int = 30

    @Option(help: ArgumentHelp("Abandon (and retry) a transfer that moves under 1 byte/s for this many seconds.", valueName: "seconds"))
    public var stallTimeout: Int = 300

    /// The options' values as plain fields.
    var values: NetworkValues {
        NetworkValues(tokenFile: tokenFile, endpoint: endpoint, partSize: partSize, caFile: caFile, retries: retries,
                      connectTimeout: connectTimeout, stallTimeout: stallTimeout)
    }

    func transportOptions(targetDevice: UInt64? = nil) throws -> TransportOptions {
        try values.transportOptions(targetDevice: targetDevice)
    }
}

/// `NetworkOptions`' values as plain fields (the same defaults), and the transport options they
/// give: filled in from the options, or directly by `receive`'s parse (`ReceiveDirectParse`).
struct NetworkValues: Equatable {
    var tokenFile: String?
    var endpoint: String?
    var partSize = ByteSize(bytes: 8 << 20)
    var caFile: String?
    var retries = 6
    var connectTimeout = 30
    var stallTimeout = 300

    func transportOptions(targetDevice: UInt64? = nil) throws -> TransportOptions {
        var o = TransportOptions()
        o.tokenFile = tokenFile
        o.s3Endpoint = endpoint
        let part = partSize.bytes
        guard part >= 5 << 20, part <= 5 << 30 else { throw ValidationError("--part-size: between 5M and 5G (S3's limits)") }
        o.partSize = Int(part)
        o.tls.caFile = caFile
        o.retry = RetryPolicy(attempts: retries)
        guard (1...86400).contains(connectTimeout) else { throw ValidationError("--connect-timeout: between 1 and 86400 seconds") }
        guard (1...86400).contains(stallTimeout) else { throw ValidationError("--stall-timeout: between 1 and 86400 seconds") }
        o.timeouts = NetworkTimeouts(connect: connectTimeout, stall: stallTimeout)
        o.targetDevice = targetDevice
        return o
    }
}
