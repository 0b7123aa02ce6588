import ArgumentParser
import Foundation

/// `--json` and `--quiet`, shared by send, receive, merge and verify.
struct ReportOptions: ParsableArguments {
    @Flag(name: .long, help: "Print a JSON summary at the end (on stdout, or stderr when the stream goes to stdout).")
    public var json = false

    @Flag(name: [.short, .long], help: "No progress line and no summary line.")
    public var quiet = false

    /// The options' values as plain fields.
    var mode: ReportMode { ReportMode(json: json, quiet: quiet) }

    /// Prints the summary: JSON when asked, else `line` (unless quiet). `streamOnStdout`: use stderr.
    func report<T: Encodable>(_ value: T, line: String, streamOnStdout: Bool = false) throws {
        try mode.report(value, line: line, streamOnStdout: streamOnStdout)
    }
}

/// `ReportOptions`' values as plain fields, and the summary they print: filled in from the
/// options, or directly by `receive`'s parse (`ReceiveDirectParse`).
struct ReportMode: Equatable {
    var json = false
    var quiet = false

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
