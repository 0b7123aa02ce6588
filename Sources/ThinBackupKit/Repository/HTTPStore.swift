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

    public func get(_ name: String) throws -> [UInt8]? {
        let curl = try CurlEasy()
        let r = request("GET", name)
        return try options.retry.run { _ -> [UInt8]? in
            var data: [UInt8] = []
            let response = try curl.perform(r, onBody: { data.append(contentsOf: $0) })
            if response.status == 404 { return nil }
            guard response.isSuccess else { throw httpError(r, response) }
            return data
        }
    }

    public func size(_ name: String) throws -> UInt64? {
        let curl = try CurlEasy()
        let r = request("HEAD", name)
        return try options.retry.run { _ -> UInt64? in
            let response = try curl.perform(r)
            if response.status == 404 { return nil }
            guard response.isSuccess else { throw httpError(r, response) }
            guard let n = response.header("content-length").flatMap({ UInt64($0.trimmingCharacters(in: .whitespaces)) }) else {
                throw JobError("\(redacted(r.url)): HEAD gave no Content-Length")
            }
            return n
        }
    }

    public func delete(_ name: String) throws {
        let curl = try CurlEasy()
        let r = request("DELETE", name)
        try options.retry.run { _ in
            let response = try curl.perform(r)
            guard response.isSuccess || response.status == 404 else { throw httpError(r, response) }
        }
    }

    public func list(prefix: String) throws -> [String]? { nil }
}
