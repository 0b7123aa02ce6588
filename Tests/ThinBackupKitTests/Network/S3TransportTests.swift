import Delta
import Foundation
import Testing
import TestSupport
@testable import ThinBackupKit

@Suite("S3 transport against a signature-checking moto server", .serialized)
final class S3TransportTests {
    let moto: MotoServer

    init() throws {
        moto = try MotoServer()
    }

    func options(_ moto: MotoServer, secret: String? = nil, partSize: Int = 5 << 20) -> TransportOptions {
        var o = fastRetry()
        o.s3Endpoint = moto.endpoint
        o.environment = moto.environment(secret: secret)
        o.partSize = partSize
        return o
    }

    /// The object as boto3 (an independent S3 client) reads it.
    func objectViaBoto(_ moto: MotoServer, key: String) throws -> [UInt8]? {
        let out = moto.dir.file("boto-\(UInt32.random(in: 0 ... .max)).bin")
        let script = """
            import boto3, sys
            s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                              aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
            s3.download_file(sys.argv[4], sys.argv[5], sys.argv[6])
            """
        let r = try Tool.run(Net.python ?? "python3", ["-c", script, moto.endpoint, moto.accessKey, moto.secretKey,
                                                       moto.bucket, key, out])
        guard r.ok else { return nil }
        return FileManager.default.contents(atPath: out).map { Array($0) }
    }

    @Test func singlePutRoundTrip() throws {
        let payload = Net.randomBytes(3 << 20 + 7, seed: 71)
        let url = "s3://\(moto.bucket)/streams/full.tbs"
        let sink = try Transport.sink(for: url, options: options(moto))
        try pour(payload, into: sink)
        #expect((sink as? S3UploadSink)?.partCount == 1)
        #expect(try objectViaBoto(moto, key: "streams/full.tbs") == payload)
        #expect(try drain(try Transport.source(for: url, options: options(moto))) == payload)
    }

    @Test func multipartUploadWithSeveralParts() throws {
        let payload = Net.randomBytes(17 << 20 + 4242, seed: 72)
        let url = "s3://\(moto.bucket)/streams/incr 1.tbs"  // a space: the key is percent-encoded and signed
        let sink = try Transport.sink(for: url, options: options(moto))
        try pour(payload, into: sink)
        #expect((sink as? S3UploadSink)?.partCount == 4)  // 5+5+5 MiB and the rest
        #expect(try objectViaBoto(moto, key: "streams/incr 1.tbs") == payload)
        let got = try drain(try Transport.source(for: url, options: options(moto), startOffset: 6 << 20))
        #expect(got == Array(payload[(6 << 20)...]))
    }

    @Test func wrongSecretIsRefusedWithAClearError() throws {
        let payload = Net.randomBytes(1 << 20, seed: 73)
        let url = "s3://\(moto.bucket)/streams/refused.tbs"
        let error = #expect(throws: TransportError.self) {
            try pour(payload, into: try Transport.sink(for: url, options: options(moto, secret: "not-the-secret")))
        }
        #expect(error?.description.contains("SignatureDoesNotMatch") == true)
        #expect(error?.description.contains("HTTP 403") == true)
        #expect(try objectViaBoto(moto, key: "streams/refused.tbs") == nil)
        let readError = #expect(throws: TransportError.self) {
            _ = try drain(try Transport.source(for: "s3://\(moto.bucket)/streams/refused.tbs",
                                               options: options(moto, secret: "not-the-secret")))
        }
        #expect(readError?.description.contains("SignatureDoesNotMatch") == true)
    }

    @Test func credentialsFromTheSharedFile() throws {
        let home = TempDir("tb-home")
        try FileManager.default.createDirectory(atPath: home.file(".aws"), withIntermediateDirectories: true)
        try "[default]\naws_access_key_id = \(moto.accessKey)\naws_secret_access_key = \(moto.secretKey)\n"
            .write(toFile: home.file(".aws/credentials"), atomically: true, encoding: .utf8)
        var o = options(moto)
        o.environment = ["HOME": home.path]
        let payload = Net.randomBytes(100_000, seed: 74)
        try pour(payload, into: try Transport.sink(for: "s3://\(moto.bucket)/f.tbs", options: o))
        #expect(try objectViaBoto(moto, key: "f.tbs") == payload)
    }
}

@Suite("S3 request building")
struct S3RequestTests {
    let creds = S3Credentials(accessKeyID: "AK", secretAccessKey: "SK", region: "eu-west-1")

    @Test func queryParametersAreSortedAndBareKeysGetAnEqualsSign() throws {
        let c = try S3Client(bucket: "b", key: "a b/c+d", credentials: creds, endpoint: "http://h:9000/", tls: TLSOptions())
        #expect(c.url(query: [("uploadId", "x/y"), ("partNumber", "3")]) == "http://h:9000/b/a%20b/c%2Bd?partNumber=3&uploadId=x%2Fy")
        #expect(c.url(query: [("uploads", "")]) == "http://h:9000/b/a%20b/c%2Bd?uploads=")
        let r = c.request("GET")
        #expect(r.headers.contains { $0.0 == "x-amz-content-sha256" && $0.1 == "UNSIGNED-PAYLOAD" })
        #expect(r.sigV4?.provider == "aws:amz:eu-west-1:s3")
    }

    @Test func awsEndpointsAreVirtualHosted() throws {
        let c = try S3Client(bucket: "bkt", key: "k", credentials: creds, endpoint: nil, tls: TLSOptions())
        #expect(c.url() == "https://bkt.s3.eu-west-1.amazonaws.com/k")
    }

    @Test func credentialsResolveFromEnvironmentFirst() throws {
        let home = TempDir("tb-home")
        try FileManager.default.createDirectory(atPath: home.file(".aws"), withIntermediateDirectories: true)
        try "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = FILESECRET\n[ci]\naws_access_key_id = CIKEY\naws_secret_access_key = CISECRET\naws_session_token = TOK\n"
            .write(toFile: home.file(".aws/credentials"), atomically: true, encoding: .utf8)
        try "[profile ci]\nregion = ap-south-1\n".write(toFile: home.file(".aws/config"), atomically: true, encoding: .utf8)
        let env = try S3Credentials.resolve(environment: ["AWS_ACCESS_KEY_ID": "E", "AWS_SECRET_ACCESS_KEY": "S",
                                                          "AWS_DEFAULT_REGION": "us-west-2"], home: home.path)
        #expect(env == S3Credentials(accessKeyID: "E", secretAccessKey: "S", region: "us-west-2"))
        let file = try S3Credentials.resolve(environment: [:], home: home.path)
        #expect(file == S3Credentials(accessKeyID: "FILEKEY", secretAccessKey: "FILESECRET", region: "us-east-1"))
        let profile = try S3Credentials.resolve(environment: ["AWS_PROFILE": "ci"], home: home.path)
        #expect(profile == S3Credentials(accessKeyID: "CIKEY", secretAccessKey: "CISECRET", sessionToken: "TOK", region: "ap-south-1"))
        #expect(throws: TransportError.self) { try S3Credentials.resolve(environment: ["HOME": "/nonexistent"]) }
    }
}
