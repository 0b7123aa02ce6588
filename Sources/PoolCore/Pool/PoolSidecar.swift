import Foundation

/// What dm-thin keeps outside its metadata (in the table line), stored beside a pool as
/// `pool.json`: each device's virtual size and external origin file, the data low-water mark.
public struct PoolSidecar: Codable, Equatable, Sendable {
    public struct Device: Codable, Equatable, Sendable {
        /// Virtual size in bytes.
        public var size: UInt64
        /// Read-only file whose bytes unprovisioned blocks show (external origin, FORMAT.md §6.13).
        public var originFile: String?
        public init(size: UInt64, originFile: String? = nil) {
            self.size = size
            self.originFile = originFile
        }
    }

    public var version = 1
    /// Keyed by decimal device id.
    public var devices: [String: Device] = [:]
    /// Free data blocks at or below which a low-space event is raised (nil: default).
    public var dataLowWaterMark: UInt64?
    /// Notes kept for upper layers, saved with the pool's transactions (e.g. what a receive
    /// recorded about a device). Keys are namespaced by their owner ("receipt.<dev>").
    public var annotations: [String: String]?

    public init() {}

    public static func load(_ path: String) throws -> PoolSidecar {
        guard FileManager.default.fileExists(atPath: path) else { return PoolSidecar() }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        do { return try JSONDecoder().decode(PoolSidecar.self, from: data) } catch {
            throw PoolError.invalid("\(path): not a pool sidecar (\(error))")
        }
    }

    /// Writes atomically (temporary file, fsync, rename).
    public func save(_ path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data = try enc.encode(self)
        let tmp = path + ".tmp"
        let f = try RandomAccessFile(path: tmp, writable: true, create: true)
        try f.truncate(to: 0)
        try data.withUnsafeBytes { try f.write($0, at: 0) }
        try f.sync()
        f.close()
        guard rename(tmp, path) == 0 else { throw PoolError.invalid("cannot rename \(tmp) to \(path)") }
    }
}
