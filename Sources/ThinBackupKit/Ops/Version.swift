/// The program's version: this constant is the only place it is written. `--version`, serve's
/// startup log, every `--json` summary and scripts/package-deb.sh (the .deb's version) read it.
public enum ThinBackupVersion {
    public static let current = "0.1.0"
}

/// A `--json` summary with the program's version added as one more top-level key, "version".
struct VersionedReport<T: Encodable>: Encodable {
    let value: T
    init(_ value: T) { self.value = value }

    private enum Key: String, CodingKey { case version }

    func encode(to encoder: any Encoder) throws {
        try value.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(ThinBackupVersion.current, forKey: .version)
    }
}
