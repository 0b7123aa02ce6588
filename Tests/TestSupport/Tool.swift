import Foundation

/// Runs external programs (the thin-provisioning-tools oracle, zstd, …) from tests.
public enum Tool {
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
        public var ok: Bool { status == 0 }
    }

    /// Runs `executable` (a name looked up in PATH, or a path) with `arguments`. `environment`
    /// changes the inherited environment: a value sets a variable, nil removes it. The status is
    /// the exit status, or 128 + the signal that ended the process (as a shell reports it).
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil,
                           environment: [String: String?] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [executable] + arguments
        if !environment.isEmpty {
            var env = ProcessInfo.processInfo.environment
            for (k, v) in environment { env[k] = v }
            p.environment = env
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let inPipe = Pipe()
        p.standardInput = stdin == nil ? FileHandle.nullDevice : inPipe
        try p.run()
        if let stdin {
            try inPipe.fileHandleForWriting.write(contentsOf: stdin)
            try inPipe.fileHandleForWriting.close()
        }
        // Read both pipes concurrently so neither fills up and blocks the child.
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Result(status: p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    /// True when the oracle tools are installed (scripts/setup.sh installs them).
    public static var hasThinTools: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/thin_dump")
            || FileManager.default.isExecutableFile(atPath: "/usr/bin/thin_dump")
    }

    /// Fails the calling test, with a message, when thin-provisioning-tools (the oracle) is missing.
    public static func requireThinTools() throws {
        guard hasThinTools else {
            throw MissingTool("thin-provisioning-tools (thin_dump, thin_check, …) is not installed; scripts/setup.sh installs it")
        }
    }
}

/// A tool or server a test needs is missing or would not start: the test fails with this message.
public struct MissingTool: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}
