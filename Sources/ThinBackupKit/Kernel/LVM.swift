import Foundation

/// One logical volume as `lvs --reportformat json` reports it (sizes in bytes).
public struct LogicalVolume: Equatable, Sendable {
    public var vg: String
    public var name: String
    public var uuid: String
    public var segtype: String
    public var pool: String
    public var thinID: UInt64?
    public var size: UInt64
    public var attr: String
    public var tags: [String]
    public var origin: String

    public var fullName: String { "\(vg)/\(name)" }
    public var isThin: Bool { segtype == "thin" }
    public var isThinPool: Bool { segtype == "thin-pool" }
    public var isActive: Bool { attr.count > 4 && Array(attr)[4] == "a" }

    /// device-mapper's name for an LV: `VG-LV` with every `-` inside either doubled.
    public static func dmName(vg: String, lv: String) -> String {
        vg.replacingOccurrences(of: "-", with: "--") + "-" + lv.replacingOccurrences(of: "-", with: "--")
    }

    /// The dm name of a thin pool LV's `thin-pool` target.
    public var poolTargetName: String { Self.dmName(vg: vg, lv: name) + "-tpool" }
}

/// LVM through its own tool with JSON reports (`lvm lvs --reportformat json`), never its
/// human output; changes through `lvcreate`/`lvremove`/`lvchange`.
public enum LVM {
    static let fields = "vg_name,lv_name,lv_uuid,segtype,pool_lv,thin_id,lv_size,lv_attr,lv_tags,origin"
    /// The tag on every snapshot ThinBackup makes (never on the user's volumes).
    public static let snapshotTag = "thin-backup"

    /// Runs `lvm ARGS` (through `ChildProcess`: both pipes drained, reaped, a deadline);
    /// returns stdout, or throws stderr's last line. A command that does not end within
    /// `timeout` seconds is killed and reported as stalled, naming the command.
    static func run(_ args: [String], lvm: String = lvmPath, timeout: Double = timeout) throws -> String {
        var env = ProcessInfo.processInfo.environment
        env["LVM_SUPPRESS_FD_WARNINGS"] = "1"
        let command = "lvm " + args.joined(separator: " ")
        let r: ChildProcess.Result
        do {
            r = try ChildProcess.run(lvm, args, environment: env, timeout: timeout)
        } catch let s as ChildProcess.Stalled {
            let said = String(decoding: s.stderr, as: UTF8.self).split(separator: "\n").last.map { "; it said: \($0)" } ?? ""
            throw JobError("`\(command)` did not finish within \(Int(s.seconds)) s and was stopped\(said) "
                + "(another LVM command holding the volume group's lock, or udev not answering?); "
                + "check `lvs` before the next run. THIN_BACKUP_LVM_TIMEOUT=SECONDS sets the limit")
        }
        guard r.succeeded else { throw JobError("lvm \(args.first ?? ""): \(r.lastErrorLine)") }
        return String(decoding: r.stdout, as: UTF8.self)
    }

    /// Seconds an `lvm` command may take: $THIN_BACKUP_LVM_TIMEOUT, default 120.
    static var timeout: Double {
        if let t = ProcessInfo.processInfo.environment["THIN_BACKUP_LVM_TIMEOUT"], let v = Double(t), v > 0, v.isFinite { return v }
        return 120
    }

    static var lvmPath: String {
        if let p = ProcessInfo.processInfo.environment["THIN_BACKUP_LVM"] { return p }
        for c in ["/usr/sbin/lvm", "/sbin/lvm", "/usr/bin/lvm"] where FileManager.default.isExecutableFile(atPath: c) { return c }
        return "lvm"
    }

    /// Parses `lvs --reportformat json --units b --nosuffix` output.
    static func parse(_ json: String) throws -> [LogicalVolume] {
        struct Report: Decodable { let report: [Section] }
        struct Section: Decodable { let lv: [[String: String]]? }
        let r: Report
        do { r = try JSONDecoder().decode(Report.self, from: Data(json.utf8)) } catch {
            throw JobError("lvs: unexpected report: \(error)")
        }
        return try r.report.flatMap { $0.lv ?? [] }.map { f in
            guard let vg = f["vg_name"], let name = f["lv_name"], let size = UInt64(f["lv_size"] ?? "") else {
                throw JobError("lvs: a volume without name or size in the report")
            }
            return LogicalVolume(
                vg: vg, name: name, uuid: f["lv_uuid"] ?? "", segtype: f["segtype"] ?? "", pool: f["pool_lv"] ?? "",
                thinID: f["thin_id"].flatMap { UInt64($0) }, size: size, attr: f["lv_attr"] ?? "",
                tags: (f["lv_tags"] ?? "").split(separator: ",").map(String.init), origin: f["origin"] ?? "")
        }
    }

    /// The volumes named (`VG/LV` or `VG`), hidden ones included: one `lvs` report. An LVM
    /// operation reads one of its volume group and reuses it (`LVMPoolVolumes` says when it
    /// reads another).
    public static func volumes(_ names: [String]) throws -> [LogicalVolume] {
        try parse(run(["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-a", "-o", fields] + names))
    }

    /// A thin snapshot `VG/NAME` of `origin` (no size: thin), tagged; `existing`: the volume
    /// group's report it is named from (no report is read here: the caller reads one after).
    static func snapshot(_ origin: LogicalVolume, name: String, tags: [String], existing: [LogicalVolume]) throws {
        if existing.contains(where: { $0.name == name }) {
            throw JobError("\(origin.vg)/\(name) exists: thin-backup names its snapshot of \(origin.fullName) so and "
                + "never takes over a volume it did not make; rename or remove that volume, or run again a second later")
        }
        _ = try run(["lvcreate", "-q", "-s", "-n", name] + tags.flatMap { ["--addtag", $0] } + [origin.fullName])
    }

    /// A new thin volume `VG/NAME` of `size` bytes (rounded up to whole extents by LVM) in
    /// `pool`, created inactive, tagged (no report: the caller reads one).
    static func createThin(in pool: LogicalVolume, name: String, size: UInt64, tags: [String]) throws {
        _ = try run(["lvcreate", "-q", "-an", "-Wn", "-V", "\(size)b", "-T", pool.fullName, "-n", name] + tags.flatMap { ["--addtag", $0] })
    }

    /// A thin snapshot `VG/NAME` of `origin`, tagged, created inactive and without the
    /// activation-skip flag (an ordinary volume once it takes its name; no report).
    static func createSnapshot(of origin: LogicalVolume, name: String, tags: [String]) throws {
        _ = try run(["lvcreate", "-q", "-s", "-an", "-kn", "-n", name] + tags.flatMap { ["--addtag", $0] } + [origin.fullName])
    }

    /// Renames `lv` to `name` in its volume group (an active volume stays active).
    static func rename(_ lv: LogicalVolume, to name: String) throws {
        _ = try run(["lvrename", "-q", lv.vg, lv.name, name])
    }

    /// Resizes a thin volume to `size` bytes (rounded up to whole extents).
    static func resize(_ fullName: String, to size: UInt64) throws {
        _ = try run(["lvresize", "-q", "-f", "-L", "\(size)b", fullName])
    }

    public static func remove(_ lv: LogicalVolume) throws {
        _ = try run(["lvremove", "-q", "-f", lv.fullName])
    }

    /// Activates a volume even when it carries the activation-skip flag (thin snapshots do).
    public static func activate(_ lv: LogicalVolume) throws {
        _ = try run(["lvchange", "-q", "-ay", "-K", lv.fullName])
    }

    public static func deactivate(_ lv: LogicalVolume) throws {
        _ = try run(["lvchange", "-q", "-an", lv.fullName])
    }
}
