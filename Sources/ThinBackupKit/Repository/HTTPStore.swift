import Delta
import Foundation

/// A repository on an HTTP server that takes PUT, GET and DELETE (nginx WebDAV, a bucket
/// behind a proxy). It cannot list: the catalog names every object.
public final class HTTPStore: ObjectStore {
    let base: String
    let options: TransportOptions
    public var displayName: String { redacted(base) }

    public init(baseURL: String, options: TransportOptions) {
        base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.options = options
    }

    func url(_ name: String) -> String {
        base + "/" + name.split(separator: "/").map { S3Client.encode(String($0), keepSlash: false) }.joined(separator: "/")
    }

    func request(_ method: String, _ name: String) -> HTTPRequest {
        var r = HTTPRequest(method: method, url: url(name))
        r.tls = options.tls
        r.apply(options.timeouts)
        return r
    }

    public func sink(_ name: String) throws -> any ByteSink {
        HTTPPutSink(request: request("PUT", name), retry: options.retry)
    }

    public func source(_ name: String) throws -> any ByteSource {
        HTTPGetSource(request: request("GET", name), retry: options.retry)
    }

    public func get(_ name: String) throws -> [UInt8]? { try getObject(request("GET", name), retry: options.retry, failure: httpError) }

    public func size(_ name: String) throws -> UInt64? {
        let r = request("HEAD", name)
        return try objectSize(r, what: redacted(r.url), retry: options.retry, failure: httpError)
    }

    public func delete(_ name: String) throws { try deleteObject(request("DELETE", name), retry: options.retry, failure: httpError) }

    public func list(prefix: String) throws -> [String]? { nil }
}
