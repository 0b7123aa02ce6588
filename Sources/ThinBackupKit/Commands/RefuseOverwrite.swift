import Foundation

/// Refuses to replace an existing regular file unless `force` (devices, FIFOs and /dev/null are written in place).
func refuseOverwrite(_ path: String, force: Bool) throws {
    var isDir: ObjCBool = false
    guard !force, FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return }
    if isDir.boolValue { throw JobError("\(path) is a folder") }
    let attrs = try? FileManager.default.attributesOfItem(atPath: path)
    if attrs?[.type] as? FileAttributeType == .typeRegular {
        throw JobError("\(path) exists: pass --force to overwrite it")
    }
}
