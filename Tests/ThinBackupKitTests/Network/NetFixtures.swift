import Foundation
import TestSupport

/// A server process started by a test on 127.0.0.1 and always stopped (deinit kills it).
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let name: String
    private let stdoutPipe = Pipe()
    private let stderrPath: String

    init(_ name: String, _ executable: String, _ arguments: [String], environment: [String: String] = [:],
         directory: TempDir) throws {
        self.name = name
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = stdoutPipe
        process.standardInput = FileHandle.nullDevice
        stderrPath = directory.file("\(name)-\(UInt32.random(in: 0 ... .max)).stderr")
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        try process.run()
    }

    deinit { stop() }

    /// The first line the process prints on stdout (e.g. its port), or nil at EOF / timeout.
    func firstLine(timeout: Double = 20) -> String? {
        let handle = stdoutPipe.fileHandleForReading
        let fd = handle.fileDescriptor
        var line = [UInt8]()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 100) >= 0 else { return nil }
            if pfd.revents == 0 { continue }
            var byte: UInt8 = 0
            guard read(fd, &byte, 1) == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return nil
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// SIGKILL: the server gets no chance to tidy up.
    func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(2)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        kill()
    }
}

enum Net {
    /// A port nobody listens on right now (bind to 0, read it, close).
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Waits until something accepts TCP connections on 127.0.0.1:`port`.
    static func waitForPort(_ port: Int, timeout: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = UInt16(port).bigEndian
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            if rc == 0 { return true }
            usleep(30_000)
        }
        return false
    }

    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            + ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/bin"] {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// The real Python interpreter (not a pyenv shim, so a kill reaches the server itself).
    static let python: String? = {
        guard let r = try? Tool.run("python3", ["-c", "import sys; print(sys.executable)"]), r.ok else { return nil }
        let p = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return p.isEmpty ? nil : p
    }()

    static var scripts: String { Repo.root + "/Tests/Scripts" }

    /// The built `thin-backup` executable beside the test bundle; missing fails the test.
    static func thinBackup() throws -> String {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let p = dir.appendingPathComponent("thin-backup").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
            dir = dir.deletingLastPathComponent()
        }
        let p = Repo.root + "/.build/debug/thin-backup"
        guard FileManager.default.isExecutableFile(atPath: p) else {
            throw MissingTool("the thin-backup executable is not built beside the tests (swift build --build-tests builds it)")
        }
        return p
    }

    /// `name`'s path in PATH (or the sbin folders); missing fails the test, naming scripts/setup.sh.
    static func require(_ name: String) throws -> String {
        guard let p = which(name) else { throw MissingTool("\(name) is not installed (scripts/setup.sh installs it)") }
        return p
    }

    /// nginx started on its own config in `dir`: the shared http settings around `server` (its
    /// server blocks), waited for on `port`; `name` names it in messages.
    static func startNginx(_ name: String, in dir: TempDir, port: Int, server: String) throws -> ServerProcess {
        let nginx = try require("nginx")
        let tmp = dir.file("tmp")
        try? FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        let conf = """
            user root;
            daemon off;
            worker_processes 1;
            pid \(dir.file("nginx.pid"));
            error_log \(dir.file("error.log"));
            events { worker_connections 64; }
            http {
                access_log off;
                client_max_body_size 0;
                client_body_temp_path \(tmp);
                proxy_temp_path \(tmp);
                fastcgi_temp_path \(tmp);
                uwsgi_temp_path \(tmp);
                scgi_temp_path \(tmp);
            \(server)
            }
            """
        try? conf.write(toFile: dir.file("nginx.conf"), atomically: true, encoding: .utf8)
        let p = try ServerProcess(name, nginx, ["-c", dir.file("nginx.conf"), "-e", dir.file("error.log")], directory: dir)
        guard waitForPort(port) else {
            throw MissingTool("\(name) did not start: \((try? String(contentsOfFile: dir.file("error.log"), encoding: .utf8)) ?? "")")
        }
        return p
    }

    /// The real Python interpreter; missing fails the test.
    static func requirePython() throws -> String {
        guard let p = python else { throw MissingTool("python3 is not installed (scripts/setup.sh needs it)") }
        return p
    }

    /// A self-signed certificate for 127.0.0.1 (its own CA) and its key, as PEM files in `dir`
    /// (`name`.pem, `name`-key.pem). Without openssl, or if it fails, the test fails.
    static func selfSignedCertificate(in dir: TempDir, name: String = "cert") throws -> (cert: String, key: String) {
        let cert = dir.file("\(name).pem"), key = dir.file("\(name)-key.pem")
        let openssl = try require("openssl")
        let r = try Tool.run(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                                       "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                                       "-keyout", key, "-out", cert])
        guard r.ok else { throw MissingTool("openssl could not make a certificate: \(r.stderr.suffix(400))") }
        return (cert, key)
    }

    static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var rng = SeededRNG(seed: seed)
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { buf in
            let words = buf.bindMemory(to: UInt64.self)
            for i in 0..<words.count { words[i] = rng.next() }
        }
        // Some compressible stretches, so the data is not uniformly random.
        for i in stride(from: 0, to: count, by: 1 << 20) where (i >> 20) % 3 == 1 {
            for j in i..<min(count, i + 4096) { out[j] = UInt8(j % 7) }
        }
        return out
    }
}

/// nginx with WebDAV PUT, on its own config and a free loopback port.
final class NginxServer {
    let dir = TempDir("tb-nginx")
    let port: Int
    let root: String
    private var process: ServerProcess?

    init() throws {
        port = Net.freePort()
        root = dir.file("www")
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        process = try Net.startNginx("nginx", in: dir, port: port, server: """
                server {
                    listen 127.0.0.1:\(port);
                    root \(root);
                    location / {
                        dav_methods PUT DELETE MKCOL COPY MOVE;
                        create_full_put_path on;
                        dav_access user:rw group:r all:r;
                    }
                }
            """)
    }

    var url: String { "http://127.0.0.1:\(port)" }
}

/// A signature-checking moto S3 server with one user and one bucket.
final class MotoServer {
    let dir = TempDir("tb-moto")
    let port: Int
    let accessKey: String
    let secretKey: String
    let bucket = "tb-bucket"
    private var process: ServerProcess?

    init() throws {
        let python = try Net.requirePython()
        guard try Tool.run(python, ["-c", "import moto.server, boto3"]).ok else {
            throw MissingTool("moto or boto3 is not installed (scripts/setup.sh: pip install 'moto[server]')")
        }
        port = Net.freePort()
        let p = try ServerProcess("moto", python, ["-m", "moto.server", "-H", "127.0.0.1", "-p", "\(port)"],
                                  environment: ["INITIAL_NO_AUTH_ACTION_COUNT": "3"], directory: dir)
        guard Net.waitForPort(port, timeout: 30) else { throw MissingTool("moto_server did not start: \(p.stderr.suffix(400))") }
        process = p
        let r = try Tool.run(python, ["\(Net.scripts)/moto_setup.py", "http://127.0.0.1:\(port)", bucket])
        guard r.ok else { throw MissingTool("could not create a moto user: \(r.stderr.suffix(400))") }
        let words = r.stdout.split(whereSeparator: \.isWhitespace)
        guard words.count == 2 else { throw MissingTool("moto_setup.py printed \(r.stdout), not a key pair") }
        accessKey = String(words[0])
        secretKey = String(words[1])
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }

    func environment(secret: String? = nil) -> [String: String] {
        ["AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secret ?? secretKey, "AWS_DEFAULT_REGION": "us-east-1",
         "HOME": dir.path]
    }
}

/// Tests/Scripts/cutproxy.py in front of `upstream`: cuts the first `cuts` connections after
/// `cutAfter` bytes in `direction` ("up" or "down"); only connections that get that far count.
final class CutProxy {
    let dir = TempDir("tb-proxy")
    let port: Int
    private let process: ServerProcess

    init(upstream: Int, cutAfter: Int, cuts: Int, direction: String) throws {
        let p = try ServerProcess("cutproxy", try Net.requirePython(),
                                  ["\(Net.scripts)/cutproxy.py", "\(upstream)", "\(cutAfter)", "\(cuts)", direction],
                                  directory: dir)
        guard let line = p.firstLine(), let port = Int(line) else {
            throw MissingTool("the cutting proxy did not start: \(p.stderr.suffix(400))")
        }
        process = p
        self.port = port
    }
}

/// nginx terminating TLS (a self-signed certificate for 127.0.0.1) in front of a local port:
/// how a `serve` receiver is reached with tbs://.
final class TLSFrontProxy {
    let dir = TempDir("tb-tls")
    let port: Int
    let caFile: String
    private var process: ServerProcess?

    init(upstream: Int) throws {
        port = Net.freePort()
        let pem = try Net.selfSignedCertificate(in: dir)
        caFile = pem.cert
        process = try Net.startNginx("nginx-tls", in: dir, port: port, server: """
                server {
                    listen 127.0.0.1:\(port) ssl;
                    ssl_certificate \(caFile);
                    ssl_certificate_key \(dir.file("cert-key.pem"));
                    location / {
                        proxy_pass http://127.0.0.1:\(upstream);
                        proxy_http_version 1.1;
                        proxy_request_buffering off;
                        proxy_buffering off;
                    }
                }
            """)
    }
}
