import ArgumentParser
import Foundation
import Logging
import NIOCore

/// `thin-backup serve`: the HTTP receiver that replays streams sent with `send --to tb://…`.
struct ServeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Receive streams over HTTP (send --to tb://HOST:PORT), or HTTPS with --tls-cert/--tls-key (tbs://), and replay them into a pool.",
        discussion: """
            Every request needs the bearer token from --token-file, except GET /metrics (Prometheus text \
            format: receives by state, bytes received, errors, uptime; counters only). One receive per target device runs \
            at a time; an interrupted one keeps its resume point, and the same send run again continues there. \
            Into an LVM thin pool (--thin-pool VG/POOL), device D is received as the volume VG/tb-D, which \
            always names its newest version (older ones kept beside it as tb-D-vTHINID).
            """
    ).underRoot()

    @OptionGroup var pool: PoolOptions

    @Option(help: "Keep each stream as DIR/<device>.stream instead of replaying it (for a later receive).")
    var spool: String?

    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free one).")
    var listen: String

    @Option(help: "A file holding the bearer token senders must present.")
    var tokenFile: String

    @Option(help: "TLS certificate chain (PEM, leaf first). With --tls-key the port accepts only TLS (send with tbs://).")
    var tlsCert: String?

    @Option(help: "TLS private key (PEM, unencrypted) of --tls-cert.")
    var tlsKey: String?

    @Option(help: ArgumentHelp("The largest stream accepted.", valueName: "size"))
    var maxStreamSize = ByteSize(bytes: 16 << 40)

    @Option(help: ArgumentHelp("With --pool: commit a resumable checkpoint every SIZE bytes of data.", valueName: "size"))
    var checkpoint = ByteSize(bytes: 64 << 20)

    @Option(help: ArgumentHelp("Close a connection that sends nothing for this many seconds (a stalled sender: its receive ends interrupted, resumable).", valueName: "seconds"))
    var idleTimeout: Double = 300

    @Option(help: ArgumentHelp("Close a connection that does not take an answer within this many seconds.", valueName: "seconds"))
    var writeTimeout: Double = 300

    @Option(help: "Write the port listened on to this file once listening (useful with port 0).")
    var portFile: String?

    @OptionGroup var key: KeyOptions
    @OptionGroup var logging: LogFormatOptions

    public func validate() throws {
        guard pool.isGiven != (spool != nil) else { throw ValidationError("give exactly one of --pool and --spool") }
        if pool.lv != nil {
            throw ValidationError("serve into LVM takes --thin-pool VG/POOL (device D is received as the volume VG/tb-D), not --lv")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError(tlsCert == nil ? "--tls-key needs --tls-cert (the certificate it belongs to)"
                                                 : "--tls-cert needs --tls-key (the certificate's private key)")
        }
        for (name, v) in [("--idle-timeout", idleTimeout), ("--write-timeout", writeTimeout)] where !(v > 0 && v <= 86400) {
            throw ValidationError("\(name): between 0 and 86400 seconds, got \(v)")
        }
    }

    public func run() throws {
        let (host, port) = try Self.parseListen(listen)
        var options = TransportOptions()
        options.tokenFile = tokenFile
        let token: String
        do { token = try options.token() } catch { throw JobError("\(error)") }
        var tls: ReceiverTLS?
        if let tlsCert, let tlsKey {
            do { tls = try ReceiverTLS(certificateFile: tlsCert, keyFile: tlsKey) } catch { throw JobError("\(error)") }
        }
        let receiver: any StreamReceiving
        if let spool {
            // Raw replication: a spool keeps streams as they came; encrypted ones need no key here.
            guard key.encryptKey == nil && key.passphraseFile == nil else {
                throw ValidationError("--spool keeps streams as they come: it takes no key")
            }
            receiver = try SpoolReceiver(directory: spool)
        } else {
            let access = try pool.open(receiving: true)
            (access as? LVMPoolAccess)?.longLived = true  // receives hours apart: each reads the volume group afresh
            receiver = try PoolStreamReceiver(pool: access, checkpointBytes: checkpoint.bytes, keyring: try key.keyring())
        }
        logging.bootstrap()
        var config = ReceiverConfiguration(host: host, port: port, token: token)
        config.maxStreamBytes = maxStreamSize.bytes
        config.tls = tls
        config.idleTimeout = .milliseconds(Int64(idleTimeout * 1000))
        config.writeTimeout = .milliseconds(Int64(writeTimeout * 1000))
        let server = try ReceiverServer.start(config, receiver: receiver)
        if let portFile {
            try "\(server.port)\n".write(toFile: portFile + ".tmp", atomically: false, encoding: .utf8)
            rename(portFile + ".tmp", portFile)
        }
        try server.wait()
    }

    static func parseListen(_ s: String) throws -> (String, Int) {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen: expected HOST:PORT, got '\(s)'")
        }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }
}
