/// Thin devices: create, snapshot, delete.
extension ThinPool {
    /// create_thin: a new empty device of `virtualSize` bytes (nil: as large as the data
    /// device). With `originFile`, unprovisioned blocks read from that read-only file and the
    /// first write to a block copies it (external origin, FORMAT.md §6.13).
    public func createThin(_ dev: UInt64, virtualSize: UInt64? = nil, originFile: String? = nil) throws {
        try checkWritable()
        if let virtualSize { try Self.validateVirtualSize(virtualSize) }
        if let originFile {
            _ = try origin(originFile)  // must open
        }
        try metadataStep { try metadata.createThin(dev) }
        let size = virtualSize ?? metadata.dataBlockCount * dataBlockSize
        sidecar.devices[String(dev)] = PoolSidecar.Device(size: size, originFile: originFile)
        raiseEvents()
    }

    /// create_snap: `dev` becomes a snapshot of `origin` (any depth; they share one tree).
    /// It inherits the origin's virtual size and external origin.
    public func snapshot(origin: UInt64, as dev: UInt64) throws {
        try checkWritable()
        guard try metadata.exists(origin) else { throw PoolError.unknownDevice(origin) }
        try metadataStep { try metadata.createSnapshot(dev, of: origin) }
        sidecar.devices[String(dev)] = sidecar.devices[String(origin)]
        raiseEvents()
    }

    /// delete: removes `dev` and releases its blocks (shared ones survive), and the notes about it
    /// (annotations named `<owner>.<dev>`), saved by the same commit.
    public func delete(_ dev: UInt64) throws {
        try checkWritable()
        try metadataStep { try metadata.delete(dev) }
        sidecar.devices[String(dev)] = nil
        let suffix = ".\(dev)"
        if let a = sidecar.annotations, a.keys.contains(where: { $0.hasSuffix(suffix) }) {
            let kept = a.filter { !$0.key.hasSuffix(suffix) }
            sidecar.annotations = kept.isEmpty ? nil : kept
        }
    }

    func origin(_ path: String) throws -> RandomAccessFile {
        if let f = originFiles[path] { return f }
        let f = try RandomAccessFile(path: path, writable: false)
        originFiles[path] = f
        return f
    }
}
