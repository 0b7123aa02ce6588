import Delta

/// Where send writes and receive/merge/verify read: local files and stdio through the buffered
/// `FileSink`/`FileSource` (never renamed over a device or FIFO), anything else (http(s)://,
/// s3://, tb://) through `Transport`.
enum StreamEndpoints {
    static func sink(_ destination: String, options: TransportOptions) throws -> any ByteSink {
        switch try Endpoint(parsing: destination) {
        case .stdio: return try FileSink(path: "-")
        case .file(let path): return try FileSink(path: path)
        default: return try Transport.sink(for: destination, options: options)
        }
    }

    static func source(_ source: String, options: TransportOptions = TransportOptions()) throws -> any ByteSource {
        switch try Endpoint(parsing: source) {
        case .stdio: return try FileSource(path: "-")
        case .file(let path): return try FileSource(path: path)
        default: return try Transport.source(for: source, options: options)
        }
    }

    /// True for a local regular file or stdio (merge verifies a file before writing).
    static func isLocalFile(_ source: String) -> Bool {
        if case .file? = try? Endpoint(parsing: source) { return true }
        return false
    }
}
