import ArgumentParser
import Delta
import Foundation

/// `--encrypt-key FILE` / `--passphrase-file FILE` (or THIN_BACKUP_PASSPHRASE): the key that encrypts
/// what a command writes, or decrypts what it reads. Shared by every command that touches streams.
struct KeyOptions: ParsableArguments {
    @Option(name: [.customLong("encrypt-key"), .customLong("key")],
            help: ArgumentHelp("Key file (thin-backup key create): encrypt, or decrypt, the streams.", valueName: "file"))
    public var encryptKey: String?

    @Option(help: ArgumentHelp("File holding a passphrase to derive the key from (Argon2id); or set THIN_BACKUP_PASSPHRASE.",
                               valueName: "file"))
    public var passphraseFile: String?

    public func validate() throws { try names.validate() }

    /// The options' values as plain fields.
    var names: KeyNames { KeyNames(encryptKey: encryptKey, passphraseFile: passphraseFile) }

    /// The keyring the options name, or nil for none (the environment's passphrase counts when no option is given).
    public func keyring(environment: [String: String]? = nil) throws -> StreamKeyring? {
        try names.keyring(environment: environment)
    }
}

/// `KeyOptions`' values as plain fields, and the keyring they name: filled in from the options,
/// or directly by `receive`'s parse (`ReceiveDirectParse`).
struct KeyNames: Equatable {
    var encryptKey: String?
    var passphraseFile: String?

    func validate() throws {
        if encryptKey != nil && passphraseFile != nil { throw ValidationError("give either --encrypt-key or --passphrase-file, not both") }
    }

    /// The keyring the options name, or nil for none (the environment's passphrase counts when no option is given).
    /// `environment`: nil reads the process's own variable alone (`getenv`), not the whole
    /// environment as a dictionary (about 0.3 ms of every receive's start).
    func keyring(environment: [String: String]? = nil) throws -> StreamKeyring? {
        if let encryptKey { return StreamKeyring(key: try readKeyFile(encryptKey)) }
        if let passphraseFile { return try passphraseKeyring(file: passphraseFile) }
        let variable = "THIN_BACKUP_PASSPHRASE"
        if let p = environment.map({ $0[variable] }) ?? getenv(variable).map({ String(cString: $0) }) {
            do { return try StreamKeyring(passphrase: Array(p.utf8)) } catch {
                throw JobError("THIN_BACKUP_PASSPHRASE: \(error.message)")
            }
        }
        return nil
    }
}

/// Reads and checks a key file (one line; see `StreamKey.fileText`).
public func readKeyFile(_ path: String) throws -> StreamKey {
    guard let d = FileManager.default.contents(atPath: path) else { throw JobError("key file \(path): cannot read it") }
    guard d.count < 4096, let text = String(data: d, encoding: .utf8) else { throw JobError("key file \(path): not a thin-backup key file") }
    do { return try StreamKey(fileText: text) } catch { throw JobError("key file \(path): \(error.message)") }
}

/// A passphrase from a file (one trailing newline dropped); warns when others may read the file.
func passphraseKeyring(file: String) throws -> StreamKeyring {
    var st = stat()
    guard stat(file, &st) == 0, let d = FileManager.default.contents(atPath: file) else {
        throw JobError("passphrase file \(file): cannot read it")
    }
    if st.st_mode & 0o077 != 0 {
        ThinBackupMain.writeStderr("thin-backup: warning: passphrase file \(file) is readable by others (chmod 600 it)\n")
    }
    var bytes = [UInt8](d)
    if bytes.last == 10 { bytes.removeLast() }
    if bytes.last == 13 { bytes.removeLast() }
    do { return try StreamKeyring(passphrase: bytes) } catch { throw JobError("passphrase file \(file): \(error.message)") }
}
