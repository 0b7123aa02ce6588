import Foundation
import PoolCore

/// A small JSON file a receive into a kernel pool keeps on the host (`ReceiveState`,
/// `LVMReceiveState`): a missing file is the empty state, a damaged one an error saying what to
/// do, and a write replaces it atomically.
protocol HostStateFile: Codable {
    init()
}

extension HostStateFile {
    static func load(_ path: String) throws -> Self {
        guard let d = FileManager.default.contents(atPath: path) else { return Self() }
        do { return try JSONDecoder().decode(Self.self, from: d) } catch {
            throw JobError("\(path): unreadable receive state (\(error)); move it aside to start over")
        }
    }

    /// Writes atomically (`replaceFile`: temporary file, sync, rename, folder sync; both syncs
    /// are fault steps, as VM scenarios 55 and 65's kill points expect).
    func store(_ path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let data = try enc.encode(self)
        do { try replaceFile(path, with: data, syncStep: true, folderSyncStep: true) } catch {
            throw JobError("cannot write \(path): \(error)")
        }
    }
}
