import Foundation
#if canImport(Glibc)
import Glibc
#endif

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
    /// recorded about a device). Keys are namespaced by their owner ("receipt.<dev>"); a note about
    /// a device is named `<owner>.<dev>` and goes when the device is deleted.
    public var annotations: [String: String]?
    /// Annotations of a commit in flight: saved just before a metadata commit that changes the
    /// transaction id, valid only if the metadata then holds `transaction` (see `resolved`).
    public var pending: PendingAnnotations?

    public struct PendingAnnotations: Codable, Equatable, Sendable {
        /// The metadata transaction id the commit writes.
        public var transaction: UInt64
        public var annotations: [String: String]
    }

    public init() {}

    /// What JSONDecoder would decode from `json` (this type's synthesized Codable: `version` and
    /// `devices` required, the others optional or null), for a sidecar as `save` writes it; nil for
    /// anything else (an unknown key, a number out of range, a wrong type), left to JSONDecoder.
    init?(json: JSONValue) {
        guard let keys = json.keys, keys.isSubset(of: ["version", "devices", "dataLowWaterMark", "annotations", "pending"]),
              let version = json["version"]?.int, case .object(let devs)? = json["devices"] else { return nil }
        self.version = version
        for (id, d) in devs {
            guard let k = d.keys, k.isSubset(of: ["size", "originFile"]), let size = d["size"]?.uint64 else { return nil }
            var dev = Device(size: size)
            switch d["originFile"] {
            case nil, .null?: break
            case .string(let f)?: dev.originFile = f
            default: return nil
            }
            devices[id] = dev
        }
        switch json["dataLowWaterMark"] {
        case nil, .null?: break
        case let v?: guard let n = v.uint64 else { return nil }; dataLowWaterMark = n
        }
        switch json["annotations"] {
        case nil, .null?: break
        case let v?: guard let a = Self.strings(v) else { return nil }; annotations = a
        }
        switch json["pending"] {
        case nil, .null?: break
        case let p?:
            guard let k = p.keys, k == ["transaction", "annotations"], let t = p["transaction"]?.uint64,
                  let a = p["annotations"].flatMap(Self.strings) else { return nil }
            pending = PendingAnnotations(transaction: t, annotations: a)
        }
    }

    /// An object of strings.
    private static func strings(_ v: JSONValue) -> [String: String]? {
        guard case .object(let o) = v else { return nil }
        var out: [String: String] = [:]
        for (k, x) in o {
            guard let s = x.string else { return nil }
            out[k] = s
        }
        return out
    }

    /// The sidecar as of metadata whose committed transaction id is `transaction`: a pending
    /// commit's annotations replace the others if that commit landed, and are dropped if not
    /// (the process died between saving the sidecar and committing the metadata).
    func resolved(transaction: UInt64) -> PoolSidecar {
        var s = self
        if let p = pending {
            if p.transaction == transaction { s.annotations = p.annotations.isEmpty ? nil : p.annotations }
            s.pending = nil
        }
        return s
    }

    public static func load(_ path: String) throws -> PoolSidecar {
        guard access(path, F_OK) == 0 else { return PoolSidecar() }
        let data = try Self.contents(of: path)
        var s: PoolSidecar
        if let fast = data.withUnsafeBytes({ JSONValue.parse($0) }).flatMap(PoolSidecar.init(json:)) {
            s = fast
        } else {
            do { s = try JSONDecoder().decode(PoolSidecar.self, from: data) } catch {
                throw PoolError.invalid("\(path): not a pool sidecar (\(error))")
            }
        }
        for (dev, d) in s.devices where d.size > ThinPool.maxVirtualSize {
            throw PoolError.invalid("\(path): thin device \(dev) has a virtual size of \(d.size) bytes, beyond the largest allowed (8 EiB)")
        }
        return s
    }

    /// The file's bytes, read with pread (Foundation's `Data(contentsOf:)` builds a URL and a file
    /// manager first: a third of a millisecond of type lookups in every receive). At most 64 MiB.
    static func contents(of path: String) throws -> Data {
        let f = try RandomAccessFile(path: path, writable: false)
        defer { f.close() }
        let size = try f.size()
        guard size <= 64 << 20 else { throw PoolError.invalid("\(path): \(size) bytes, too large for a pool sidecar") }
        var data = Data(count: Int(size))
        let got = try data.withUnsafeMutableBytes { try f.read(into: $0, at: 0) }
        return data.prefix(got)
    }

    /// Writes atomically (`replaceFile`: temporary file, sync, rename, folder sync; the file's
    /// sync and the rename are fault steps). On failure (e.g. ENOSPC) the temporary file is removed.
    public func save(_ path: String) throws {
        try replaceFile(path, with: try encoded(), syncStep: true, renameStep: true)
    }

    /// What `save` writes: JSONEncoder's output (sorted keys, pretty printed), written by
    /// `JSONValue.encoded` where it can (byte for byte the same, without JSONEncoder's first-use cost).
    func encoded() throws -> Data {
        if let bytes = json.encoded(pretty: true) { return Data(bytes) }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try enc.encode(self)
    }

    /// The value the synthesized Codable encodes (an optional that is nil is left out).
    var json: JSONValue {
        func strings(_ d: [String: String]) -> JSONValue { .object(d.mapValues { .string($0) }) }
        var o: [String: JSONValue] = ["version": .number(String(version))]
        o["devices"] = .object(devices.mapValues { d in
            var x: [String: JSONValue] = ["size": .number(String(d.size))]
            if let f = d.originFile { x["originFile"] = .string(f) }
            return .object(x)
        })
        if let m = dataLowWaterMark { o["dataLowWaterMark"] = .number(String(m)) }
        if let a = annotations { o["annotations"] = strings(a) }
        if let p = pending { o["pending"] = .object(["transaction": .number(String(p.transaction)), "annotations": strings(p.annotations)]) }
        return .object(o)
    }
}
