/// Why a stream was refused. Each case prints one line saying what is wrong and where.
public enum StreamError: Error, Equatable, Sendable, CustomStringConvertible {
    case notAStream
    case unsupportedVersion(UInt32)
    case badHeadChecksum(sequence: UInt64, offset: UInt64)
    case badChecksum(sequence: UInt64, offset: UInt64)
    case outOfOrder(expected: UInt64, found: UInt64, offset: UInt64)
    case badRecord(sequence: UInt64, reason: String)
    case unknownRecord(type: UInt8, sequence: UInt64)
    case truncated(offset: UInt64)
    case trailingBytes(offset: UInt64)
    case trailerMismatch(String)
    case payload(sequence: UInt64, reason: String)
    case keyRequired(keyID: Digest128)
    case wrongKey(stream: Digest128, given: Digest128)
    case notEncrypted
    case authenticationFailed(sequence: UInt64, offset: UInt64)
    case key(String)

    public var description: String {
        switch self {
        case .notAStream:
            return "not a thin-backup delta stream (bad magic)"
        case let .unsupportedVersion(v):
            return "stream format version \(v) is not supported (this build reads versions \(StreamFormat.version) and \(StreamFormat.encryptedVersion))"
        case let .badHeadChecksum(seq, off):
            return "stream corrupted: record \(seq) at byte \(off) has a bad head checksum"
        case let .badChecksum(seq, off):
            return "stream corrupted: record \(seq) at byte \(off) fails its checksum (damaged, reordered or from another stream)"
        case let .outOfOrder(expected, found, off):
            return "stream corrupted: record at byte \(off) is number \(found), expected \(expected) (records reordered or spliced)"
        case let .badRecord(seq, reason):
            return "stream corrupted: record \(seq): \(reason)"
        case let .unknownRecord(type, seq):
            return "record \(seq) has unknown type \(type) (written by a newer thin-backup?)"
        case let .truncated(off):
            return "stream truncated at byte \(off) (no trailer)"
        case let .trailingBytes(off):
            return "stream has extra bytes after its trailer at byte \(off)"
        case let .trailerMismatch(what):
            return "stream trailer does not match what was received: \(what)"
        case let .payload(seq, reason):
            return "stream corrupted: record \(seq): payload \(reason)"
        case let .keyRequired(id):
            return "the stream is encrypted (key \(id)): give its key (--encrypt-key FILE, --passphrase-file FILE or THIN_BACKUP_PASSPHRASE)"
        case let .wrongKey(stream, given):
            return "wrong key: the stream is encrypted with key \(stream), the key given is \(given)"
        case .notEncrypted:
            return "the stream is not encrypted but a key was given: refusing it (an unencrypted stream may have replaced the encrypted one)"
        case let .authenticationFailed(seq, off):
            return "stream authentication failed at record \(seq) (byte \(off)): tampered, reordered, cut or taken from another stream"
        case let .key(message):
            return "key: \(message)"
        }
    }
}
