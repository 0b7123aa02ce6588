import Foundation
import PoolCore
#if canImport(Glibc)
import Glibc
#endif

/// The external origin a merge writes into (`merge … --into ORIGIN`): a block device (a kernel
/// thin device's `external_origin_dev`) or a regular file (a userspace pool's `--origin-file`),
/// checked before anything is read or written: it exists, is writable, and nobody else has it
/// open for writing or holds it (device-mapper tables, mounts).
public struct OriginTarget: Sendable {
    public let path: String
    public let isBlockDevice: Bool
    /// MAJOR:MINOR of a block device (as dm tables name it), nil for a file.
    public let number: String?
    /// st_dev and st_ino of a file (to recognise it under another name).
    let fileID: (dev: UInt64, ino: UInt64)
    public let size: UInt64

    /// What `path` is (a block device or a regular file) and its size.
    public static func inspect(_ path: String) throws -> OriginTarget {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw JobError("\(path): cannot use it as the origin: \(String(cString: strerror(errno)))")
        }
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFBLK || kind == S_IFREG else {
            throw JobError("\(path): the origin must be a block device or a regular file")
        }
        let f = try RandomAccessFile(path: path, writable: false)
        defer { f.close() }
        return OriginTarget(path: path, isBlockDevice: kind == S_IFBLK, number: kind == S_IFBLK ? BlockDevices.number(of: path) : nil,
                            fileID: (UInt64(st.st_dev), UInt64(st.st_ino)), size: try f.size())
    }

    /// Refuses (one line, exit 1) an origin a merge must not write: read-only, held by a
    /// device-mapper device (or other exclusive opener: found when opening it), open for writing.
    public func refuseUnsafe() throws {
        if let number {
            if readSys("/sys/dev/block/\(number)/ro") == "1" {
                throw JobError("\(path) is read-only (its ro flag is set): make it writable for the merge "
                    + "(blockdev --setrw, a read-write table, lvchange -p rw) and again read-only after")
            }
            var st = stat()
            let holders = stat(path, &st) == 0 ? BlockDeviceHolders.names(of: st.st_rdev) : []
            if !holders.isEmpty {
                throw JobError("\(path) is held by \(holders.joined(separator: ", ")) (device-mapper): "
                    + "remove every device over the origin first (dmsetup remove NAME); nothing was written")
            }
        } else if access(path, W_OK) != 0 {
            throw JobError("\(path): not writable: \(String(cString: strerror(errno)))")
        }
        try refuseWriters()
    }

    /// True when `other` names this origin (the same device, or the same file by inode).
    public func isSame(as other: String) -> Bool {
        var st = stat()
        guard stat(other, &st) == 0 else { return false }
        if isBlockDevice { return (st.st_mode & S_IFMT) == S_IFBLK && BlockDevices.number(of: other) == number }
        return UInt64(st.st_dev) == fileID.dev && UInt64(st.st_ino) == fileID.ino
    }

    /// Fails naming the processes (other than this one) that have the origin open for writing.
    public func refuseWriters() throws {
        let w = writers()
        guard !w.isEmpty else { return }
        throw JobError("\(path) is open for writing by " + w.map { "\($0.command) (pid \($0.pid))" }.joined(separator: ", ")
            + ": stop them first; nothing was written")
    }

    /// Processes with a descriptor on the origin opened for writing (O_WRONLY/O_RDWR), from
    /// /proc/PID/fd and /proc/PID/fdinfo (what fuser reads). This process is left out.
    public func writers() -> [(pid: Int32, command: String)] {
        var out: [(pid: Int32, command: String)] = []
        let me = getpid()
        for pidName in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(pidName), pid != me else { continue }
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            for fd in fds where refersToOrigin("/proc/\(pid)/fd/\(fd)") {
                guard let flags = Self.fdFlags(pid: pid, fd: fd), flags & 3 != 0 else { continue }
                out.append((pid, readSys("/proc/\(pid)/comm") ?? "?"))
                break
            }
        }
        return out
    }

    private func refersToOrigin(_ link: String) -> Bool {
        var st = stat()
        guard stat(link, &st) == 0 else { return false }
        if isBlockDevice {
            guard (st.st_mode & S_IFMT) == S_IFBLK else { return false }
            return BlockDevices.number(of: link) == number
        }
        return UInt64(st.st_dev) == fileID.dev && UInt64(st.st_ino) == fileID.ino
    }

    /// The `flags:` line of /proc/PID/fdinfo/FD (octal open flags).
    static func fdFlags(pid: Int32, fd: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(fd)", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("flags:") {
            return Int(line.dropFirst("flags:".count).trimmingCharacters(in: .whitespaces), radix: 8)
        }
        return nil
    }
}

private func readSys(_ path: String) -> String? {
    (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
}
