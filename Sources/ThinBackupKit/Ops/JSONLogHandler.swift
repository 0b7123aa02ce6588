import ArgumentParser
import Foundation
import Logging

/// swift-log handler writing one JSON object per line: "time", "level", "label", "message", and
/// every metadata key (job, volume, backup, device, peer, …) beside them as a string.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    let label: String
    let write: @Sendable (String) -> Void

    public init(label: String, write: @escaping @Sendable (String) -> Void = { ThinBackupMain.writeStderr($0) }) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: String] = [:]
        let provided = metadataProvider?.get() ?? [:]
        for (k, v) in metadata.merging(provided, uniquingKeysWith: { a, _ in a }).merging(event.metadata ?? [:], uniquingKeysWith: { _, new in new }) {
            fields[k] = "\(v)"
        }
        write(Self.line(level: event.level.rawValue, label: label, message: event.message.description, metadata: fields))
    }

    /// One event as a JSON line (keys sorted). Metadata named like a fixed field is kept as "meta.NAME".
    static func line(level: String, label: String, message: String, metadata: [String: String], at date: Date = Date()) -> String {
        var fields: [String: String] = [:]
        for (k, v) in metadata {
            fields[["time", "level", "label", "message"].contains(k) ? "meta.\(k)" : k] = v
        }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        fields["time"] = f.string(from: date)
        fields["level"] = level
        fields["label"] = label
        fields["message"] = message
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? enc.encode(fields)) ?? Data(#"{"message":"unencodable log event"}"#.utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// `--log-format text|json` (serve, run): how log events are written to stderr.
struct LogFormatOptions: ParsableArguments {
    public enum Format: String, ExpressibleByArgument, CaseIterable, Sendable { case text, json }

    @Option(help: "Log events on stderr as text lines, or one JSON object per line (json).")
    public var logFormat: Format = .text

    nonisolated(unsafe) private static var bootstrapped = false
    private static let bootstrapLock = NSLock()

    /// Sets the process-wide logging backend once (later calls change nothing).
    func bootstrap() {
        Self.bootstrapLock.lock()
        defer { Self.bootstrapLock.unlock() }
        guard !Self.bootstrapped else { return }
        Self.bootstrapped = true
        switch logFormat {
        case .json: LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
        case .text: LoggingSystem.bootstrap(StreamLogHandler.standardError)
        }
    }

    /// A logger for `label` in the chosen format, without touching the process-wide backend (tests).
    func logger(_ label: String) -> Logger {
        switch logFormat {
        case .json: return Logger(label: label) { JSONLogHandler(label: $0) }
        case .text: return Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        }
    }
}
