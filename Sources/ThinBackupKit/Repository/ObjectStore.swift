import Delta
import Foundation

/// A flat namespace of named objects: what a backup repository is stored in. Names are
/// relative paths ("catalog.sqlite", "streams/12.tbs"). Implemented over the transports for a
/// folder, an http(s) URL (WebDAV-style PUT/GET/DELETE) and s3://BUCKET/PREFIX.
public protocol ObjectStore: AnyObject {
    /// How the user wrote the repository (for messages).
    var displayName: String { get }
    /// A sink that creates (or replaces) `name` when finished; nothing appears under `name` before.
    func sink(_ name: String) throws -> any ByteSink
    /// Reads `name`; a missing object throws a `JobError`.
    func source(_ name: String) throws -> any ByteSource
    /// The whole object, or nil when it does not exist.
    func get(_ name: String) throws -> [UInt8]?
    /// Removes `name` (no error when it is already gone).
    func delete(_ name: String) throws
    /// Names under `prefix`, or nil when the store cannot list (plain HTTP: the catalog names every object).
    func list(prefix: String) throws -> [String]?
    /// The size of `name` in bytes, or nil when it does not exist (HTTP and S3: a HEAD request).
    func size(_ name: String) throws -> UInt64?
}

extension ObjectStore {
    /// Stores `bytes` as `name` (atomically: through `sink`).
    public func put(_ name: String, _ bytes: [UInt8]) throws {
        let s = try sink(name)
        try bytes.withUnsafeBytes { try s.write($0) }
        try s.finish()
    }

    /// Whether `name` exists.
    public func exists(_ name: String) throws -> Bool { try size(name) != nil }
}

/// Opens the object store a repository string names: a folder path, http(s)://… or s3://BUCKET/PREFIX.
/// `create`: a missing folder is created (backup); read-only commands pass false.
public func openObjectStore(_ repo: String, options: TransportOptions = TransportOptions(), create: Bool = true) throws -> any ObjectStore {
    switch try Endpoint(parsing: repo) {
    case .file(let path):
        return try FolderStore(path: path, create: create)
    case .http(let url):
        return HTTPStore(baseURL: url, options: options)
    case .s3(let bucket, let key):
        return S3Store(bucket: bucket, prefix: key, options: options)
    case .stdio, .receiver:
        throw JobError(.usage, "\(repo): a repository is a folder, an http(s):// URL or s3://BUCKET/PREFIX")
    }
}

// GET, HEAD and DELETE of one object of the HTTP and S3 stores: the request `r` retried by
// `retry`, a 404 taken as no such object, any other failure made an error by `failure`.

/// The whole object, or nil.
func getObject(_ r: HTTPRequest, retry: RetryPolicy, failure: (HTTPRequest, HTTPResponse) -> TransportError) throws -> [UInt8]? {
    let curl = try CurlEasy()
    return try retry.run { _ -> [UInt8]? in
        var data: [UInt8] = []
        let response = try curl.perform(r, onBody: { data.append(contentsOf: $0) })
        if response.status == 404 { return nil }
        guard response.isSuccess else { throw failure(r, response) }
        return data
    }
}

/// The object's size (Content-Length of a HEAD; `what` names the object when it is missing), or nil.
func objectSize(_ r: HTTPRequest, what: String, retry: RetryPolicy, failure: (HTTPRequest, HTTPResponse) -> TransportError) throws -> UInt64? {
    let curl = try CurlEasy()
    return try retry.run { _ -> UInt64? in
        let response = try curl.perform(r)
        if response.status == 404 { return nil }
        guard response.isSuccess else { throw failure(r, response) }
        guard let n = response.header("content-length").flatMap({ UInt64($0.trimmingCharacters(in: .whitespaces)) }) else {
            throw JobError("\(what): HEAD gave no Content-Length")
        }
        return n
    }
}

/// Deletes the object (a 404 is no error).
func deleteObject(_ r: HTTPRequest, retry: RetryPolicy, failure: (HTTPRequest, HTTPResponse) -> TransportError) throws {
    let curl = try CurlEasy()
    try retry.run { _ in
        let response = try curl.perform(r)
        guard response.isSuccess || response.status == 404 else { throw failure(r, response) }
    }
}

/// Reads a source to its end.
func readAll(_ source: any ByteSource) throws -> [UInt8] {
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = try buf.withUnsafeMutableBytes { try source.read(into: $0) }
        if n == 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return out
}
