/// Why a receive was refused (the pool was left as it was, or at its last checkpoint).
public enum ReplayError: Error, Equatable, Sendable, CustomStringConvertible {
    case blockSizeMismatch(stream: UInt32, pool: Int)
    case deviceExists(UInt64)
    case baseNotFound(base: SnapshotIdentity, target: SnapshotIdentity)
    case baseFingerprintMismatch(local: UInt64, base: SnapshotIdentity, recorded: Digest128, stream: Digest128)
    case baseModified(local: UInt64, base: SnapshotIdentity)
    case targetDigestMismatch(expected: Digest128, computed: Digest128)
    case nothingToResume(UInt64)
    case notTheInterruptedStream(String)
    case sourceEnded
    case needsOrigin(SnapshotIdentity)
    case unverifiedContent(SnapshotIdentity)
    case beyondDevice(UInt64)

    public var description: String {
        switch self {
        case let .blockSizeMismatch(s, p):
            return "stream has blocks of \(s) bytes, the receiving pool \(p) bytes and does not zero the rest of a new block (skip_block_zeroing): refused"
        case let .deviceExists(d):
            return "thin device \(d) already exists and was not received from this stream (choose another id with --as)"
        case let .baseNotFound(base, target):
            return "incremental stream for \(target) applies onto base \(base), which this pool never received: refused"
        case let .baseFingerprintMismatch(local, base, recorded, stream):
            return "local device \(local) holds base \(base) with content \(recorded), but the stream was made from content \(stream): refused"
        case let .baseModified(local, base):
            return "local device \(local) (base \(base)) was modified since it was received: refused"
        case let .targetDigestMismatch(expected, computed):
            return "received device content digest \(computed) differs from the sender's \(expected): refused"
        case let .nothingToResume(d):
            return "no interrupted receive of thin device \(d) to resume"
        case let .notTheInterruptedStream(why):
            return "cannot resume: \(why)"
        case .sourceEnded:
            return "the stream source ended early"
        case let .beyondDevice(d):
            return "a record reaches beyond the end of thin device \(d): refused"
        case let .unverifiedContent(t):
            return "the incremental stream for \(t) names its base's content digest but its trailer carries no digest of the result: its data cannot be verified, refused"
        case let .needsOrigin(t):
            return "the stream's \(t) reads its unmapped blocks from an external origin: name that origin file (--origin-file) to receive it"
        }
    }
}
