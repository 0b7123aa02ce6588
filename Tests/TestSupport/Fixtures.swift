import Foundation

/// The kernel-written metadata images in Tests/Fixtures/kernel (zstd-compressed; see the README there).
public enum KernelFixtures {
    public static let names = [
        "tmeta", "tmeta_device_id_reuse", "tmeta_with_deleted_snapshot", "tmeta_with_empty_roots",
        "tmeta_with_metadata_snap", "tmeta_with_shared_internal_root", "tmeta_with_shared_internals_and_leaves",
    ]

    /// The folder holding the compressed images, inside this repository.
    public static var directory: String { Repo.root + "/Tests/Fixtures/kernel" }

    /// Decompresses image `name` into `dir` (a writable copy) and returns its path.
    public static func decompress(_ name: String, into dir: TempDir) throws -> String {
        let out = dir.file("\(name).img")
        let r = try Tool.run("zstd", ["-q", "-d", "-f", "\(directory)/\(name).img.zst", "-o", out])
        guard r.ok else { throw FixtureError(message: "zstd -d \(name): \(r.stderr)") }
        return out
    }

    public struct FixtureError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }
}

/// Where the repository's own folders are (for tests that run scripts or the built binary).
public enum Repo {
    public static var root: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }
}
