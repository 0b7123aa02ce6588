import Delta
import Foundation
import PoolCore

/// A repository in a local (or mounted) folder: one file per object, written to
/// "<name>.partial", fsynced and renamed into place.
public final class FolderStore: ObjectStore {
    public let root: String
    public var displayName: String { root }

    /// `create`: make the folder when missing (a new repository); else it must exist.
    public init(path: String, create: Bool = true) throws {
        root = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: root, isDirectory: &isDir) {
            guard isDir.boolValue else { throw JobError(.usage, "\(root) is not a folder") }
        } else if create {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } else {
            throw JobError("\(root) is not a backup repository (no such folder)")
        }
    }

    func path(_ name: String) -> String { "\(root)/\(name)" }

    public func sink(_ name: String) throws -> any ByteSink {
        let p = path(name)
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        return try FileSink(path: p)
    }

    public func source(_ name: String) throws -> any ByteSource {
        guard FileManager.default.fileExists(atPath: path(name)) else {
            throw JobError("\(path(name)) is missing from the repository")
        }
        return try FileSource(path: path(name))
    }

    public func get(_ name: String) throws -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: path(name)) else { return nil }
        guard let d = FileManager.default.contents(atPath: path(name)) else {
            throw JobError("cannot read \(path(name))")
        }
        return [UInt8](d)
    }

    public func size(_ name: String) throws -> UInt64? {
        var st = stat()
        if stat(path(name), &st) != 0 {
            if errno == ENOENT { return nil }
            throw JobError("cannot stat \(path(name)): \(String(cString: strerror(errno)))")
        }
        return UInt64(st.st_size)
    }

    public func delete(_ name: String) throws {
        try FaultInjection.step(.delete)
        if unlink(path(name)) != 0 && errno != ENOENT {
            throw JobError("cannot delete \(path(name)): \(String(cString: strerror(errno)))")
        }
    }

    public func list(prefix: String) throws -> [String]? {
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        var out: [String] = []
        while let n = e.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path(n), isDirectory: &isDir), !isDir.boolValue,
               n.hasPrefix(prefix), !n.hasSuffix(".partial") {
                out.append(n)
            }
        }
        return out.sorted()
    }
}

extension FolderStore {
    /// Removes what an unfinished `sink(name)` wrote ("<name>.partial"), if anything (no fault step:
    /// only an undo calls it).
    public func discardPartial(_ name: String) {
        unlink(path(name) + ".partial")
    }

    /// Removes every "<name>.partial" in the folder: what runs killed outright (SIGKILL, a crash,
    /// power loss) were writing. Only a run holding the repository lock calls it, so no live run
    /// is writing one (every run that writes into a repository holds its lock). Returns the
    /// names removed, with their sizes.
    public func removeStalePartials() -> [(name: String, bytes: UInt64)] {
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        var removed: [(name: String, bytes: UInt64)] = []
        while let n = e.nextObject() as? String {
            guard n.hasSuffix(".partial") else { continue }
            var st = stat()
            guard lstat(path(n), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            if unlink(path(n)) == 0 { removed.append((n, UInt64(st.st_size))) }
        }
        return removed.sorted { $0.name < $1.name }
    }
}
