import Delta
import Foundation

/// A repository under s3://BUCKET/PREFIX: one object per name, "PREFIX/name". Streams go up
/// by multipart upload (the S3 sink); small objects by a single PUT. Listing is not needed
/// (the catalog names every object) and not implemented.
public final class S3Store: ObjectStore {
    let bucket: String
    let prefix: String
    let options: TransportOptions
    public var displayName: String { "s3://\(bucket)/\(prefix)" }

    public init(bucket: String, prefix: String, options: TransportOptions) {
        self.bucket = bucket
        var p = prefix
        while p.hasSuffix("/") { p.removeLast() }
        self.prefix = p
        self.options = options
    }

    func client(_ name: String) throws -> S3Client {
        try Transport.s3Client(bucket, prefix.isEmpty ? name : "\(prefix)/\(name)", options)
    }

    public func sink(_ name: String) throws -> any ByteSink {
        try S3UploadSink(client: client(name), retry: options.retry, partSize: options.partSize)
    }

    public func source(_ name: String) throws -> any ByteSource {
        s3Source(try client(name), retry: options.retry, startOffset: 0)
    }

    public func get(_ name: String) throws -> [UInt8]? {
        let c = try client(name)
        return try getObject(c.request("GET"), retry: options.retry, failure: c.s3Error)
    }

    public func size(_ name: String) throws -> UInt64? {
        let c = try client(name)
        return try objectSize(c.request("HEAD"), what: "\(displayName)/\(name)", retry: options.retry, failure: c.s3Error)
    }

    public func delete(_ name: String) throws {
        let c = try client(name)
        try deleteObject(c.request("DELETE"), retry: options.retry, failure: c.s3Error)
    }

    public func list(prefix: String) throws -> [String]? { nil }
}
