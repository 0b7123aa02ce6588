/// Notes of upper layers kept in the sidecar and committed with the pool's transaction.
extension ThinPool {
    /// The note under `key` in the open transaction.
    public func annotation(_ key: String) -> String? { sidecar.annotations?[key] }

    /// Every note whose key starts with `prefix`.
    public func annotations(prefix: String) -> [String: String] {
        (sidecar.annotations ?? [:]).filter { $0.key.hasPrefix(prefix) }
    }

    /// Sets (or with nil removes) a note; saved by the next `commit()`, dropped by `abort()`.
    public func setAnnotation(_ key: String, _ value: String?) throws {
        try checkWritable()
        var a = sidecar.annotations ?? [:]
        a[key] = value
        sidecar.annotations = a.isEmpty ? nil : a
    }

    /// Changes the virtual size of `dev` (the sidecar's record); mappings beyond a smaller size are discarded.
    public func setVirtualSize(_ dev: UInt64, _ size: UInt64) throws {
        try checkWritable()
        try Self.validateVirtualSize(size)
        guard try metadata.exists(dev) else { throw PoolError.unknownDevice(dev) }
        let old = try virtualBlocks(of: dev)
        var d = sidecar.devices[String(dev)] ?? PoolSidecar.Device(size: size)
        d.size = size
        sidecar.devices[String(dev)] = d
        let blocks = size / dataBlockSize + (size % dataBlockSize == 0 ? 0 : 1)
        if blocks < old { try discard(dev, blocks: blocks..<old) }
    }
}
