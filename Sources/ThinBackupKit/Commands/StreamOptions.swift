import ArgumentParser
import Foundation

/// `--json` and `--quiet`, shared by send, receive, merge and verify.
public struct ReportOptions: ParsableArguments {
    @Flag(name: .long, help: "Print a JSON summary at the end (on stdout, or stderr when the stream goes to stdout).")
    public var json = false

    @Flag(name: [.short, .long], help: "No progress line and no summary line.")
    public var quiet = false

    public init() {}

    /// Prints the summary: JSON when asked, else `line` (unless quiet). `streamOnStdout`: use stderr.
    func report<T: Encodable>(_ value: T, line: String, streamOnStdout: Bool = false) throws {
        var text: String
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            text = String(decoding: try enc.encode(VersionedReport(value)), as: UTF8.self)
        } else if !quiet {
            text = line
        } else {
            return
        }
        text += "\n"
        if streamOnStdout {
            ThinBackupMain.writeStderr(text)
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

/// Parses "64k", "1M", "2G" or plain bytes.
func parseSize(_ s: String) throws -> UInt64 {
    let units: [Character: UInt64] = ["k": 1 << 10, "K": 1 << 10, "m": 1 << 20, "M": 1 << 20, "g": 1 << 30, "G": 1 << 30, "t": 1 << 40, "T": 1 << 40]
    var body = Substring(s)
    var mult: UInt64 = 1
    if let last = body.last, let m = units[last] { mult = m; body = body.dropLast() }
    if body.hasSuffix("i") || body.hasSuffix("B") { body = body.dropLast() }
    guard let n = UInt64(body), n.multipliedReportingOverflow(by: mult).overflow == false else {
        throw ValidationError("not a size: \(s)")
    }
    return n * mult
}
