import Foundation

/// Block devices by number, through sysfs (no udev needed: works in an initramfs too).
public enum BlockDevices {
    /// `/dev/NAME` of MAJOR:MINOR (`DEVNAME` in its uevent), or nil when the kernel has none.
    public static func path(of majorMinor: String) -> String? {
        guard let text = try? String(contentsOfFile: "/sys/dev/block/\(majorMinor)/uevent", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("DEVNAME=") {
            return "/dev/" + line.dropFirst("DEVNAME=".count)
        }
        return nil
    }

    /// MAJOR:MINOR of a block device node, or nil when `path` is not one.
    public static func number(of path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFBLK else { return nil }
        let dev = UInt64(st.st_rdev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        return "\(major):\(minor)"
    }

    /// The device-mapper name of MAJOR:MINOR, or nil when it is not a dm device.
    public static func dmName(of majorMinor: String) -> String? {
        guard let s = try? String(contentsOfFile: "/sys/dev/block/\(majorMinor)/dm/name", encoding: .utf8) else { return nil }
        return s.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
