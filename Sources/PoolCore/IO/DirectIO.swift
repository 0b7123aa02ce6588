#if canImport(Glibc)
import Glibc
#endif

/// O_DIRECT transfers of a `RandomAccessFile` on a block device: the kernel moves only
/// buffers, offsets and lengths aligned to the device's logical block (4096 bytes covers
/// every device). Unaligned requests go through an aligned bounce buffer: reads take the
/// enclosing aligned range; writes read, patch and write back the partial edges.
enum DirectIO {
    static let alignment = 4096
    /// Bytes moved per bounced transfer.
    static let chunk = 1 << 20

    static func aligned(_ address: UnsafeRawPointer?, _ count: Int, _ offset: UInt64) -> Bool {
        let a = UInt(bitPattern: address)
        return a % UInt(alignment) == 0 && count % alignment == 0 && offset % UInt64(alignment) == 0
    }

    /// The aligned device range a bounced transfer of up to `remaining` bytes at `pos` covers:
    /// its start, the bytes to skip at its head, how many caller bytes it carries, its length.
    static func window(at pos: UInt64, remaining: Int) -> (start: UInt64, skip: Int, count: Int, span: Int) {
        let start = pos - pos % UInt64(alignment)
        let skip = Int(pos - start)
        let count = min(remaining, chunk - skip)
        return (start, skip, count, (skip + count + alignment - 1) / alignment * alignment)
    }

    static func readUnaligned(_ file: RandomAccessFile, into buffer: UnsafeMutableRawBufferPointer,
                              at offset: UInt64) throws(MetadataError) -> Int {
        let bounce = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: alignment)
        defer { bounce.deallocate() }
        var done = 0
        while done < buffer.count {
            let (start, skip, want, span) = window(at: offset + UInt64(done), remaining: buffer.count - done)
            let n = try file.preadFully(into: UnsafeMutableRawBufferPointer(rebasing: bounce[0..<span]), at: start)
            let got = max(0, min(want, n - skip))
            if got > 0 {
                (buffer.baseAddress! + done).copyMemory(from: bounce.baseAddress! + skip, byteCount: got)
            }
            done += got
            if got < want { break }
        }
        return done
    }

    static func writeUnaligned(_ file: RandomAccessFile, _ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(MetadataError) {
        let bounce = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: alignment)
        defer { bounce.deallocate() }
        var done = 0
        while done < buffer.count {
            let (start, skip, take, span) = window(at: offset + UInt64(done), remaining: buffer.count - done)
            let window = UnsafeMutableRawBufferPointer(rebasing: bounce[0..<span])
            if skip != 0 || take % alignment != 0 {
                // Partial edges keep the device's bytes around the write.
                let n = try file.preadFully(into: window, at: start)
                if n < span { UnsafeMutableRawBufferPointer(rebasing: window[n...]).initializeMemory(as: UInt8.self, repeating: 0) }
            }
            (bounce.baseAddress! + skip).copyMemory(from: buffer.baseAddress! + done, byteCount: take)
            try file.pwriteFully(UnsafeRawBufferPointer(window), at: start)
            done += take
        }
    }
}

/// Who holds a block device open exclusively: the names of its holders in sysfs
/// (`/sys/dev/block/MAJ:MIN/holders/dm-N` → that device-mapper device's name).
public enum BlockDeviceHolders {
    public static func names(of rdev: dev_t) -> [String] {
        let dev = UInt64(rdev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        let dir = "/sys/dev/block/\(major):\(minor)/holders"
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name == "." || name == ".." { continue }
            out.append(dmName("/sys/block/\(name)/dm/name") ?? name)
        }
        return out.sorted()
    }

    static func dmName(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var buf = [CChar](repeating: 0, count: 256)
        guard fgets(&buf, Int32(buf.count), f) != nil else { return nil }
        let s = String(cString: buf)
        return s.hasSuffix("\n") ? String(s.dropLast()) : s
    }
}
