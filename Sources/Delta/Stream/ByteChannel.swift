public import PoolCore

/// Where an encoded stream goes. Delta declares it; transports (files, stdout,
/// HTTP, S3, the receiver server) in ThinBackupKit implement it.
public protocol ByteSink: AnyObject {
    /// Writes all of `bytes` (may block; throws on a transport failure).
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Called once after the last write: flush, complete an upload, fsync.
    func finish() throws
}

/// Where an encoded stream comes from.
public protocol ByteSource: AnyObject {
    /// Reads up to `buffer.count` bytes; returns 0 only at the end of the stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Everything not read yet, mapped read-only (a regular file's rest), after which the source is
    /// at its end; nil (the default) when the source cannot map, and then nothing was read.
    func mapRest() -> FileMapping?
}

extension ByteSource {
    public func mapRest() -> FileMapping? { nil }
}
