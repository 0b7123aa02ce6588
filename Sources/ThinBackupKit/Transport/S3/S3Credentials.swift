import Foundation

/// AWS credentials and region, found the way the AWS tools find them: the environment
/// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION/AWS_DEFAULT_REGION),
/// else the shared files ~/.aws/credentials and ~/.aws/config for AWS_PROFILE (or "default").
public struct S3Credentials: Sendable, Equatable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    public var region = "us-east-1"

    /// Resolves credentials from `environment` and the shared files under `home`.
    public static func resolve(environment: [String: String],
                               home: String? = nil) throws -> S3Credentials {
        let home = home ?? environment["HOME"] ?? NSHomeDirectory()
        let profile = environment["AWS_PROFILE"] ?? "default"
        let credentialsFile = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        let configFile = environment["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config"
        let fileCreds = iniSection(path: credentialsFile, section: profile)
        let config = iniSection(path: configFile, section: profile == "default" ? "default" : "profile \(profile)")

        let region = nonEmpty(environment["AWS_REGION"]) ?? nonEmpty(environment["AWS_DEFAULT_REGION"])
            ?? nonEmpty(config["region"]) ?? "us-east-1"
        if let key = nonEmpty(environment["AWS_ACCESS_KEY_ID"]) {
            guard let secret = nonEmpty(environment["AWS_SECRET_ACCESS_KEY"]) else {
                throw TransportError(.usage, "s3: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
            }
            return S3Credentials(accessKeyID: key, secretAccessKey: secret,
                                 sessionToken: nonEmpty(environment["AWS_SESSION_TOKEN"]), region: region)
        }
        if let key = nonEmpty(fileCreds["aws_access_key_id"]), let secret = nonEmpty(fileCreds["aws_secret_access_key"]) {
            return S3Credentials(accessKeyID: key, secretAccessKey: secret,
                                 sessionToken: nonEmpty(fileCreds["aws_session_token"]), region: region)
        }
        throw TransportError(.usage, "s3: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                                 + "or add profile '\(profile)' to \(credentialsFile)")
    }

    private static func nonEmpty(_ s: String?) -> String? {
        guard let s, !s.isEmpty else { return nil }
        return s
    }

    /// The key = value pairs of `[section]` in an INI file (empty when the file or section is missing).
    static func iniSection(path: String, section: String) -> [String: String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var current: String? = nil
        var out: [String: String] = [:]
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: " \t")
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                current = String(line.dropFirst().dropLast()).trimmingCharacters(in: " \t")
                continue
            }
            guard current == section, let eq = line.firstIndex(of: "=") else { continue }
            out[line[..<eq].trimmingCharacters(in: " \t").lowercased()] =
                line[line.index(after: eq)...].trimmingCharacters(in: " \t")
        }
        return out
    }
}
