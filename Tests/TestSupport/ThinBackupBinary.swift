import Foundation

/// The thin-backup executable that `swift build --build-tests` builds beside the tests.
public enum ThinBackupBinary {
    public static var path: String { Repo.root + "/.build/debug/thin-backup" }

    /// The path; throws (the test fails with this message) when the executable was not built.
    public static func required() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw MissingTool("build the executable first (swift build --build-tests): \(path)")
        }
        return path
    }

    /// Runs it with `arguments` (`environment` added to the test's own); fails when it was not built.
    @discardableResult
    public static func run(_ arguments: [String], stdin: Data? = nil, environment: [String: String] = [:]) throws -> Tool.Result {
        let exe = try required()
        if environment.isEmpty { return try Tool.run(exe, arguments, stdin: stdin) }
        return try Tool.run("env", environment.map { "\($0.key)=\($0.value)" } + [exe] + arguments, stdin: stdin)
    }
}
