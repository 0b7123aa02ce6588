import ArgumentParser
import Delta
import Foundation

/// `verify --repo DEST [--deep]`: prints the summary and fails (exit 1) when anything is wrong.
func runRepoVerify(_ repo: String, deep: Bool, options: TransportOptions, output: ReportOptions, keyring: StreamKeyring?) throws {
    let r = try verifyRepository(repo, deep: deep, quiet: output.quiet, options: options, keyring: keyring)
    let head = "repository \(repo): \(r.backups) backups, \(r.streamsChecked) streams checked (\(formatBytes(r.streamBytes)))"
        + (deep ? ", \(r.restoredAndCompared) restored and compared" : "")
    if !r.unreferencedObjects.isEmpty && !output.quiet && !output.json {
        ThinBackupMain.writeStderr("note: \(r.unreferencedObjects.count) stream object(s) not in the catalog (left by an interrupted run; "
                                   + "safe to delete): \(r.unreferencedObjects.joined(separator: ", "))\n")
    }
    if output.json {
        try output.report(r, line: "")
    } else if !r.ok {
        for p in r.problems { ThinBackupMain.writeStderr("backup \(p.backup) (\(p.object)): \(p.message)\n") }
    } else {
        try output.report(r, line: head + ": OK")
    }
    if !r.ok {
        throw JobError("\(head): \(r.problems.count) problem\(r.problems.count == 1 ? "" : "s") found")
    }
}
