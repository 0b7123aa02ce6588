import Delta
import Foundation

/// Picks the transport for a destination or source string (see `Endpoint`) — what `send`,
/// `receive` and `merge` call instead of opening files themselves.
public enum Transport {
    /// A sink that writes a stream to `destination`.
    public static func sink(for destination: String, options: TransportOptions = TransportOptions()) throws -> any ByteSink {
        switch try Endpoint(parsing: destination) {
        case .stdio:
            return try FileSink(path: "-")
        case .file(let path):
            return try FileSink(path: path)
        case .http(let url):
            var request = HTTPRequest(method: "PUT", url: url)
            request.tls = options.tls
            request.apply(options.timeouts)
            return HTTPPutSink(request: request, retry: options.retry)
        case .s3(let bucket, let key):
            return try S3UploadSink(client: s3Client(bucket, key, options), retry: options.retry, partSize: options.partSize)
        case .receiver(let host, let port, let tls, let device):
            guard let device = device ?? options.targetDevice else {
                throw TransportError(.usage, "\(destination): which device? give tb://HOST:PORT/DEVICE")
            }
            return try ReceiverSink(host: host, port: port, tls: tls, device: device, options: options)
        }
    }

    /// A source that reads a stream from `source`, from byte `startOffset` on (a resumed
    /// receive restarting at a frame boundary).
    public static func source(for source: String, options: TransportOptions = TransportOptions(),
                              startOffset: UInt64 = 0) throws -> any ByteSource {
        switch try Endpoint(parsing: source) {
        case .stdio:
            guard startOffset == 0 else { throw TransportError(.usage, "cannot resume reading stdin at an offset") }
            return try FileSource(path: "-")
        case .file(let path):
            return try FileSource(path: path, startOffset: startOffset)
        case .http(let url):
            var request = HTTPRequest(method: "GET", url: url)
            request.tls = options.tls
            request.apply(options.timeouts)
            return HTTPGetSource(request: request, retry: options.retry, startOffset: startOffset)
        case .s3(let bucket, let key):
            return s3Source(try s3Client(bucket, key, options), retry: options.retry, startOffset: startOffset)
        case .receiver:
            throw TransportError(.usage, "\(source): a tb:// receiver only accepts streams (send --to), it does not serve them")
        }
    }

    /// For a `tb://` destination: the resume token of the target device's interrupted receive
    /// (a pool receiver's checkpoint), so `send` can continue there; nil for other destinations.
    public static func receiverResumeToken(for destination: String, options: TransportOptions) throws -> String? {
        guard case .receiver(let host, let port, let tls, let device) = try Endpoint(parsing: destination),
              let device = device ?? options.targetDevice else { return nil }
        return try ReceiverSink(host: host, port: port, tls: tls, device: device, options: options).resumeToken()
    }

    static func s3Client(_ bucket: String, _ key: String, _ options: TransportOptions) throws -> S3Client {
        let environment = options.environment
        let credentials = try S3Credentials.resolve(environment: environment)
        let endpoint = options.s3Endpoint ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"]
        return try S3Client(bucket: bucket, key: key, credentials: credentials, endpoint: endpoint, tls: options.tls, timeouts: options.timeouts)
    }
}
