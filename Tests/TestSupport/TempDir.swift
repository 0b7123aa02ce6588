import Foundation

/// A fresh directory under the system temp folder, removed when the value is released.
public final class TempDir: @unchecked Sendable {
    public let path: String

    public init(_ label: String = "tb") {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        path = "\(base)/\(label)-\(getpid())-\(UInt64.random(in: 0 ... .max))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        if ProcessInfo.processInfo.environment["TB_KEEP_TEMP"] == nil {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    /// Creates (or truncates) a sparse file of `size` bytes.
    @discardableResult
    public func sparseFile(_ name: String, size: UInt64) -> String {
        let p = file(name)
        _ = FileManager.default.createFile(atPath: p, contents: nil)
        let h = FileHandle(forWritingAtPath: p)!
        try! h.truncate(atOffset: size)
        try! h.close()
        return p
    }
}
