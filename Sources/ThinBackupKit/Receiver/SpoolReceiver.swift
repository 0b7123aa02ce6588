import Delta
import Foundation

/// A receiver that keeps each device's stream as a file, `DIR/<device>.stream`, for a later
/// `receive --from FILE` (`serve --spool DIR`); also the stand-in receiver of the server's tests.
///
/// A receive writes `<device>.stream.partial` and records the stream id in
/// `<device>.stream.pending`; every `syncInterval` bytes it fsyncs, and the resume point is the
/// last synced size. On completion the partial file is fsynced and renamed over the final name.
public final class SpoolReceiver: StreamReceiving, @unchecked Sendable {
    public let directory: String
    let syncInterval: Int

    public init(directory: String, syncInterval: Int = 1 << 20) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw ReceiveRefused("spool directory \(directory) does not exist")
        }
        self.directory = directory
        self.syncInterval = syncInterval
    }

    func path(_ device: UInt64, _ suffix: String = "") -> String { "\(directory)/\(device).stream\(suffix)" }

    public func pendingReceive(device: UInt64) throws -> PendingReceive? {
        guard let data = FileManager.default.contents(atPath: path(device, ".pending")),
              let pending = try? JSONDecoder().decode(PendingReceive.self, from: data) else { return nil }
        return pending
    }

    public func receive(device: UInt64, streamID: String, offset: UInt64, from source: any ByteSource) throws -> ReceiverOutcome {
        let partial = path(device, ".partial")
        if offset > 0 {
            guard let pending = try pendingReceive(device: device), pending.streamID == streamID,
                  pending.resumeOffset == offset else {
                throw ReceiveRefused("no interrupted receive of this stream at byte \(offset) for device \(device)")
            }
        } else {
            unlink(partial)
        }
        let fd = open(partial, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ReceiveRefused("cannot create \(partial): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(offset)) == 0, lseek(fd, off_t(offset), SEEK_SET) >= 0 else {
            throw ReceiveRefused("cannot position \(partial) at \(offset)")
        }
        var synced = offset
        try record(PendingReceive(streamID: streamID, resumeOffset: synced), device)
        var total = offset
        var buffer = [UInt8](repeating: 0, count: 256 << 10)
        do {
            while true {
                let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
                if n == 0 { break }
                try buffer.withUnsafeBytes { try writeAll(fd, UnsafeRawBufferPointer(rebasing: $0.prefix(n)), name: partial) }
                total += UInt64(n)
                if total - synced >= UInt64(syncInterval) {
                    fsync(fd)
                    synced = total
                    try record(PendingReceive(streamID: streamID, resumeOffset: synced), device)
                }
            }
        } catch {
            // Keep only what is on disk for sure: the resume point is the last synced size.
            _ = ftruncate(fd, off_t(synced))
            fsync(fd)
            throw error
        }
        fsync(fd)
        guard rename(partial, path(device)) == 0 else {
            throw ReceiveRefused("cannot rename \(partial): \(String(cString: strerror(errno)))")
        }
        unlink(path(device, ".pending"))
        return ReceiverOutcome(bytes: total, message: "stored \(total) bytes for device \(device)")
    }

    private func record(_ pending: PendingReceive, _ device: UInt64) throws {
        let data = try JSONEncoder().encode(pending)
        let tmp = path(device, ".pending.tmp")
        guard FileManager.default.createFile(atPath: tmp, contents: data), rename(tmp, path(device, ".pending")) == 0 else {
            throw ReceiveRefused("cannot record the resume point for device \(device)")
        }
    }
}
