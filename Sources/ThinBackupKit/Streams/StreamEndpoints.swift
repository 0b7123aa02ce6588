/// Facts about a stream's source string that the stream commands need beyond `Transport`.
enum StreamEndpoints {
    /// True for a local regular file (merge verifies a file before writing).
    static func isLocalFile(_ source: String) -> Bool {
        if case .file? = try? Endpoint(parsing: source) { return true }
        return false
    }
}
