import CDevMapperShim
#if canImport(Glibc)
import Glibc
#endif

/// One target line of a dm table or status: `START LENGTH TYPE PARAMS`.
public struct DMTarget: Equatable, Sendable {
    public var start: UInt64
    public var length: UInt64
    public var type: String
    public var params: String

    /// Parses libdevmapper's lines (as the shim prints them).
    static func lines(_ text: String) -> [DMTarget] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
            guard f.count >= 3, let s = UInt64(f[0]), let l = UInt64(f[1]) else { return nil }
            return DMTarget(start: s, length: l, type: String(f[2]), params: f.count > 3 ? String(f[3]) : "")
        }
    }
}

/// What DM_DEVICE_INFO says about a device.
public struct DMInfo: Sendable {
    public var suspended: Bool
    public var readOnly: Bool
    public var openCount: Int32
    public var major: UInt32
    public var minor: UInt32
}

/// Device-mapper through libdevmapper (the library LVM and cryptsetup use): tables, status
/// lines, target messages, suspend and resume. The C calls live in CDevMapperShim; this is
/// the only Swift file that calls them.
public enum DeviceMapper {
    private static let initialized: Bool = { tbdm_init(); return true }()

    /// A failed call is a `JobError` naming what was asked and libdevmapper's line (else the kernel's errno).
    private static func check(_ rc: Int32, _ operation: String) throws(JobError) {
        guard rc != 0 else { return }
        var detail = String(cString: tbdm_last_error())
        if detail.hasSuffix("\n") { detail.removeLast() }
        let e = Int32(tbdm_last_errno())
        throw JobError("\(operation): \(detail.isEmpty ? (e != 0 ? String(cString: strerror(e)) : "failed") : detail)")
    }

    private static func takeString(_ p: UnsafeMutablePointer<CChar>?) -> String {
        guard let p else { return "" }
        defer { free(p) }
        return String(cString: p)
    }

    /// The device's info, or nil when no device has that name.
    public static func info(_ name: String) throws(JobError) -> DMInfo? {
        _ = initialized
        var i = tbdm_info()
        try check(tbdm_get_info(name, &i), "device-mapper info of \(name)")
        guard i.exists != 0 else { return nil }
        return DMInfo(suspended: i.suspended != 0, readOnly: i.read_only != 0, openCount: i.open_count, major: i.major, minor: i.minor)
    }

    public static func table(_ name: String) throws(JobError) -> [DMTarget] {
        _ = initialized
        var out: UnsafeMutablePointer<CChar>?
        try check(tbdm_table(name, 0, &out), "device-mapper table of \(name)")
        return DMTarget.lines(takeString(out))
    }

    public static func status(_ name: String) throws(JobError) -> [DMTarget] {
        _ = initialized
        var out: UnsafeMutablePointer<CChar>?
        try check(tbdm_table(name, 1, &out), "device-mapper status of \(name)")
        return DMTarget.lines(takeString(out))
    }

    /// Sends a target message (sector 0); returns the target's response, if any.
    @discardableResult
    public static func message(_ name: String, _ text: String) throws(JobError) -> String {
        _ = initialized
        var out: UnsafeMutablePointer<CChar>?
        try check(tbdm_message(name, 0, text, &out), "message \"\(text)\" to \(name)")
        return takeString(out)
    }

    /// Suspends `name`, flushing its queued I/O first.
    public static func suspend(_ name: String) throws(JobError) {
        _ = initialized
        try check(tbdm_suspend(name, 1), "suspend \(name)")
    }

    public static func resume(_ name: String) throws(JobError) {
        _ = initialized
        try check(tbdm_resume(name), "resume \(name)")
    }

    public static func names() throws(JobError) -> [String] {
        _ = initialized
        var out: UnsafeMutablePointer<CChar>?
        try check(tbdm_names(&out), "device-mapper list")
        return takeString(out).split(separator: "\n").map(String.init)
    }

    /// Creates `name` with one target and resumes it; `readOnly` loads a read-only table.
    public static func create(_ name: String, _ target: DMTarget, readOnly: Bool = false) throws(JobError) {
        _ = initialized
        try check(tbdm_create_mode(name, target.start, target.length, target.type, target.params, readOnly ? 1 : 0), "create \(name)")
    }

    public static func remove(_ name: String) throws(JobError) {
        _ = initialized
        try check(tbdm_remove(name), "remove \(name)")
    }

    /// Removes `name` if it exists.
    public static func removeIfPresent(_ name: String) throws(JobError) {
        if try info(name) != nil { try remove(name) }
    }
}
