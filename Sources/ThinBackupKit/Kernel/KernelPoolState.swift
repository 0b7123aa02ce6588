import Foundation

/// What ThinBackup keeps about live pools on the host: $THIN_BACKUP_STATE_DIR, else
/// /var/lib/thin-backup (a metadata snapshot survives a reboot, and so must its record).
/// Per pool: a folder for backup's lock and catalog copy, and the sizes of the inactive
/// snapshots it made on a raw dm pool (their size is in no kernel table).
public enum KernelPoolState {
    public static var base: String {
        ProcessInfo.processInfo.environment["THIN_BACKUP_STATE_DIR"] ?? "/var/lib/thin-backup"
    }

    static func safe(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "_" })
    }

    /// STATE/pools/KEY, created.
    public static func directory(for key: String) throws -> String {
        let d = "\(base)/pools/\(safe(key))"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    static func sizesPath(_ pool: String) -> String { "\(base)/pools/dm-\(safe(pool))/sizes.json" }

    static func sizes(_ pool: String) -> [String: UInt64] {
        guard let d = FileManager.default.contents(atPath: sizesPath(pool)) else { return [:] }
        return (try? JSONDecoder().decode([String: UInt64].self, from: d)) ?? [:]
    }

    static func store(_ pool: String, _ m: [String: UInt64]) {
        guard (try? directory(for: "dm-\(pool)")) != nil, let d = try? JSONEncoder().encode(m) else { return }
        try? d.write(to: URL(fileURLWithPath: sizesPath(pool)), options: .atomic)
    }

    public static func size(pool: String, dev: UInt64) -> UInt64? { sizes(pool)[String(dev)] }

    public static func recordSize(pool: String, dev: UInt64, size: UInt64) {
        var m = sizes(pool)
        m[String(dev)] = size
        store(pool, m)
    }

    public static func forgetSize(pool: String, dev: UInt64) {
        var m = sizes(pool)
        guard m.removeValue(forKey: String(dev)) != nil else { return }
        store(pool, m)
    }

    // External origins of inactive snapshots ThinBackup made (STATE/pools/dm-POOL/origins.json).

    static func originsPath(_ pool: String) -> String { "\(base)/pools/dm-\(safe(pool))/origins.json" }

    static func origins(_ pool: String) -> [String: String] {
        guard let d = FileManager.default.contents(atPath: originsPath(pool)) else { return [:] }
        return (try? JSONDecoder().decode([String: String].self, from: d)) ?? [:]
    }

    public static func origin(pool: String, dev: UInt64) -> String? { origins(pool)[String(dev)] }

    public static func recordOrigin(pool: String, dev: UInt64, origin: String) {
        var m = origins(pool)
        m[String(dev)] = origin
        guard (try? directory(for: "dm-\(pool)")) != nil, let d = try? JSONEncoder().encode(m) else { return }
        try? d.write(to: URL(fileURLWithPath: originsPath(pool)), options: .atomic)
    }

    public static func forgetOrigin(pool: String, dev: UInt64) {
        var m = origins(pool)
        guard m.removeValue(forKey: String(dev)) != nil, let d = try? JSONEncoder().encode(m) else { return }
        try? d.write(to: URL(fileURLWithPath: originsPath(pool)), options: .atomic)
    }
}
