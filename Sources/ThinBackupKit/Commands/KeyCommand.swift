import ArgumentParser
import Delta
import Foundation

/// `thin-backup key`: make a key file, show a key's public id.
struct KeyCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Create an encryption key file, or show a key's public id.",
        subcommands: [Create.self, ShowID.self]
    ).underRoot()

    struct Create: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Write a new random 256-bit key (mode 0600; an existing file is never replaced).")
        @Option(help: ArgumentHelp("Key file to create.", valueName: "file")) public var to: String
        public func run() throws {
            let key = StreamKey.generate()
            try createKeyFile(to, key)
            print("created key \(to): id \(key.id)")
        }
    }

    struct ShowID: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "show-id", abstract: "Print a key's public id (what streams and repositories record).")
        @Argument(help: ArgumentHelp("Key file.", valueName: "file")) public var file: String
        public func run() throws { print(try readKeyFile(file).id) }
    }
}

/// Creates `path` with mode 0600 holding `key`; refuses an existing file.
func createKeyFile(_ path: String, _ key: StreamKey) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
        let e = errno
        throw JobError(e == EEXIST ? "key file \(path) already exists: not replacing it" : "key file \(path): \(String(cString: strerror(e)))")
    }
    defer { close(fd) }
    let text = Array(key.fileText.utf8)
    let n = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    guard n == text.count, fsync(fd) == 0 else {
        unlink(path)
        throw JobError("key file \(path): could not write it")
    }
}
