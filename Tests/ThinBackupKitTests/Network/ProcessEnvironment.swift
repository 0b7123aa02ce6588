import Foundation

/// The process environment is one for the whole test process, and suites run in parallel. A test
/// that sets variables for in-process `cli` calls (S3 keys of its own moto, a fake lvm) does it
/// through `ProcessEnvironment.with`, which holds one lock while they are set and puts the old
/// values back. Two suites that each set their own moto's keys once raced: one suite's requests
/// went out signed with the other's keys (HTTP 403 InvalidAccessKeyId).
enum ProcessEnvironment {
    private static let lock = NSLock()

    static func with<T>(_ vars: [String: String], _ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        let saved = ProcessInfo.processInfo.environment
        for (k, v) in vars { setenv(k, v, 1) }
        defer {
            for k in vars.keys {
                if let v = saved[k] { setenv(k, v, 1) } else { unsetenv(k) }
            }
        }
        return try body()
    }
}
