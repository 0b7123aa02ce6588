#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress display on stderr (only when stderr is a terminal and not quiet):
/// bytes done, rate, and time remaining when the total is known.
public final class ProgressMeter {
    private let enabled: Bool
    private let label: String
    private let start: Double
    private var last: Double = 0
    private var shown = false

    public init(label: String, quiet: Bool) {
        self.label = label
        enabled = !quiet && isatty(2) == 1
        start = ProgressMeter.now()
    }

    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public var elapsed: Double { ProgressMeter.now() - start }

    /// Reports `done` of `total` bytes (total 0: unknown), plus `other` bytes (e.g. stream bytes).
    public func update(done: UInt64, total: UInt64, streamBytes: UInt64) {
        guard enabled else { return }
        let t = ProgressMeter.now()
        guard t - last >= 0.25 else { return }
        last = t
        let secs = max(t - start, 1e-6)
        let rate = Double(done) / secs
        var line = "\r\(label): \(formatBytes(done)) (stream \(formatBytes(streamBytes))), \(formatBytes(UInt64(rate)))/s"
        if total > done, rate > 0 {
            line += ", \(Int(Double(done) * 100 / Double(total)))%, \(Int(Double(total - done) / rate))s left"
        }
        line += "\u{1B}[K"
        ThinBackupMain.writeStderr(line)
        shown = true
    }

    /// Clears the progress line.
    public func finish() {
        if shown { ThinBackupMain.writeStderr("\r\u{1B}[K") }
    }
}

/// 1234567 → "1.2 MiB".
public func formatBytes(_ n: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    if i == 0 { return "\(n) B" }
    return "\((v * 10).rounded() / 10) \(units[i])"
}
