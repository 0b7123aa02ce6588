import Delta
import Foundation

/// The clear `key.json` of an encrypted repository: the public id of its key and, for a
/// passphrase, the Argon2id salt and cost. Written by the first backup that used a key.
struct RepositoryKeyRecord: Codable, Equatable {
    static let objectName = "key.json"
    var keyID: String
    /// "key-file" or "argon2id".
    var kind: String
    var salt: String?
    var opsLimit: UInt64?
    var memLimit: UInt64?

    init(_ key: StreamKey) {
        keyID = key.id.description
        switch key.derivation {
        case .keyFile:
            kind = "key-file"
        case let .argon2id(salt, ops, mem):
            kind = "argon2id"
            self.salt = salt.map { String(format: "%02x", $0) }.joined()
            opsLimit = ops
            memLimit = mem
        }
    }

    var derivation: KeyDerivation? {
        switch kind {
        case "key-file": return .keyFile
        case "argon2id":
            guard let s = salt, s.count == 32, let ops = opsLimit, let mem = memLimit else { return nil }
            var b: [UInt8] = []
            var i = s.startIndex
            while i < s.endIndex {
                let j = s.index(i, offsetBy: 2)
                guard let v = UInt8(s[i..<j], radix: 16) else { return nil }
                b.append(v)
                i = j
            }
            return .argon2id(salt: b, opsLimit: ops, memLimit: mem)
        default: return nil
        }
    }
}

/// Finds a repository's key: the one `key.json` names (refusing a missing or different key), or,
/// for a repository with no backups yet and `adopt`, the key given (recorded by `saveCatalog`).
/// Returns nil for an unencrypted repository.
func resolveRepositoryKey(_ store: any ObjectStore, keyring: StreamKeyring?, hasBackups: Bool,
                          adopt: Bool) throws -> (key: StreamKey, isNew: Bool)? {
    let name = store.displayName
    guard let raw = try store.get(RepositoryKeyRecord.objectName) else {
        guard let keyring else { return nil }
        guard adopt && !hasBackups else {
            throw JobError(.usage, "repository \(name) holds unencrypted backups: it takes no key")
        }
        return (try keyring.keyForWriting(salt: Sodium.randomBytes(Sodium.saltBytes)), true)
    }
    guard let rec = try? JSONDecoder().decode(RepositoryKeyRecord.self, from: Data(raw)), let derivation = rec.derivation else {
        throw JobError("repository \(name): its \(RepositoryKeyRecord.objectName) is damaged")
    }
    guard let keyring else {
        throw JobError(.usage, "repository \(name) is encrypted (key \(rec.keyID)): give its key (--encrypt-key FILE, --passphrase-file FILE or THIN_BACKUP_PASSPHRASE)")
    }
    let key: StreamKey
    do { key = try keyring.key(for: derivation) } catch { throw JobError(.usage, "repository \(name): \(error.message)") }
    guard key.id.description == rec.keyID else {
        throw JobError(.usage, "repository \(name) is encrypted with key \(rec.keyID), not with the key given (\(key.id))")
    }
    return (key, false)
}
