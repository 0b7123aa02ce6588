import Foundation

/// Checks what a job file names before anything starts: every volume's pool and device, the
/// repository (reachable; a folder may be created), the state folder. The first problem is one
/// line naming the file and line and the volume; nothing has been snapshotted or written.
enum JobPreflight {
    static func check(_ job: JobConfig, options: TransportOptions) throws {
        func fail(_ line: Int, _ m: String) -> JobError { .jobFile(job.file, line: line, m, usage: false) }
        for v in job.volumes {
            if case .folder(let path) = v.pool {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
                    throw fail(v.line, "volume \(v.name): no pool folder \(path)")
                }
            }
            let exists: Bool, dev: UInt64
            do {
                let (access, d) = try v.pool.openVolume(dev: v.dev)
                defer { access.close() }
                (exists, dev) = (try access.deviceExists(d), d)
            } catch {
                throw fail(v.line, "volume \(v.name): cannot open \(v.pool.description): \(error)")
            }
            guard exists else { throw fail(v.line, "volume \(v.name): \(v.pool.description) has no thin device \(dev)") }
        }
        func unreachable(_ error: any Error) -> JobError {
            fail(job.repositoryLine, "repository \(job.repository) is not reachable: \(error)")
        }
        let endpoint: Endpoint
        do { endpoint = try Endpoint(parsing: job.repository) } catch { throw unreachable(error) }
        switch endpoint {
        case .file(let path):
            // The first backup creates the folder; its parent must be there.
            let parent = (path as NSString).deletingLastPathComponent
            var isDir: ObjCBool = false
            if !FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                guard FileManager.default.fileExists(atPath: parent.isEmpty ? "." : parent, isDirectory: &isDir), isDir.boolValue else {
                    throw fail(job.repositoryLine, "repository \(job.repository): neither it nor its parent folder exists")
                }
            } else if !isDir.boolValue {
                throw fail(job.repositoryLine, "repository \(job.repository) is not a folder")
            }
        case .http, .s3:
            // One read of the catalog: an unreachable server or a refused credential shows here.
            // Retried briefly (a network blip), not for the whole backup retry schedule.
            var quick = options
            quick.retry = RetryPolicy(attempts: 3, baseDelay: 0.2, maxDelay: 1)
            do {
                let store = try openObjectStore(job.repository, options: quick, create: false)
                _ = try store.get(Catalog.objectName)
            } catch {
                throw unreachable(error)
            }
        case .stdio, .receiver:
            throw fail(job.repositoryLine, "repository \(job.repository): a repository is a folder, an http(s):// URL or s3://BUCKET/PREFIX")
        }
        if let keyFile = job.keyFile {
            do { _ = try readKeyFile(keyFile) } catch { throw fail(job.keyFileLine, "\(error)") }
        }
        if let ca = job.caFile, !FileManager.default.isReadableFile(atPath: ca) {
            throw fail(0, "ca-file \(ca) cannot be read")
        }
        do {
            try FileManager.default.createDirectory(atPath: job.stateDir, withIntermediateDirectories: true)
        } catch {
            throw fail(0, "state-dir \(job.stateDir) cannot be created: \(error)")
        }
    }
}
