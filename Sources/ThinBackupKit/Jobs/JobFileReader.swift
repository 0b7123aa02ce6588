import Foundation

/// The job file's syntax: a small INI dialect, read line by line so every error names its line.
///
///     # comment (also ;), blank lines ignored
///     key = value              job-wide settings, before any section
///     [volume NAME]            one section per volume; its keys follow
///     key = "quoted value"     quotes are optional; inside them \" and \\ escape
///
/// A key may appear once per section. Names are case-sensitive. What the keys mean is
/// `JobConfig`'s business; this type knows only lines, sections and values.
struct JobFileReader {
    struct Entry {
        let key: String
        let value: String
        let line: Int
    }

    struct Section {
        /// nil: the job-wide part before the first section.
        let volume: String?
        let line: Int
        var entries: [Entry] = []
    }

    let path: String
    private(set) var sections: [Section] = []

    /// Parses `text` (read from `path`, named in errors).
    init(path: String, text: String) throws {
        self.path = path
        sections = [Section(volume: nil, line: 0)]
        var lineNumber = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else { throw error(lineNumber, "a section header ends with ]") }
                let inner = line.dropFirst().dropLast().split(separator: " ", omittingEmptySubsequences: true)
                guard inner.count == 2, inner[0] == "volume" else {
                    throw error(lineNumber, "unknown section \(line) (sections are [volume NAME])")
                }
                let name = String(inner[1])
                guard name.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) }), name.allSatisfy(\.isASCII) else {
                    throw error(lineNumber, "volume name '\(name)': use letters, digits, '.', '_' and '-'")
                }
                if let first = sections.first(where: { $0.volume == name }) {
                    throw error(lineNumber, "volume '\(name)' is already defined on line \(first.line)")
                }
                sections.append(Section(volume: name, line: lineNumber))
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw error(lineNumber, "expected KEY = VALUE, got '\(line)'") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw error(lineNumber, "expected KEY = VALUE, got '\(line)'")
            }
            let value = try unquote(line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces), lineNumber)
            if let dup = sections[sections.count - 1].entries.first(where: { $0.key == key }) {
                throw error(lineNumber, "'\(key)' is already set on line \(dup.line)")
            }
            sections[sections.count - 1].entries.append(Entry(key: key, value: value, line: lineNumber))
        }
    }

    /// A value with its optional surrounding quotes removed; an unquoted value ends at " #".
    private func unquote(_ s: String, _ line: Int) throws -> String {
        guard s.hasPrefix("\"") else {
            if let hash = s.range(of: " #") { return s[..<hash.lowerBound].trimmingCharacters(in: .whitespaces) }
            return s
        }
        var out = ""
        var escaped = false
        var closed: String.Index?
        for i in s.indices.dropFirst() {
            let c = s[i]
            if escaped {
                guard c == "\"" || c == "\\" else { throw error(line, "unknown escape \\\(c) (only \\\" and \\\\)") }
                out.append(c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == "\"" {
                closed = i
                break
            } else {
                out.append(c)
            }
        }
        guard let closed else { throw error(line, "unterminated quoted value") }
        let rest = s[s.index(after: closed)...].trimmingCharacters(in: .whitespaces)
        guard rest.isEmpty || rest.hasPrefix("#") else { throw error(line, "unexpected text after the quoted value: '\(rest)'") }
        return out
    }

    func error(_ line: Int, _ message: String) -> JobError { .jobFile(path, line: line, message) }
}

extension JobError {
    /// A job file that cannot be used: one line naming the file, the line (0: the file as a whole)
    /// and what is wrong, found before anything starts. Syntax and unknown keys are usage errors
    /// (the file is wrong); checks of the world (a missing device, an unreachable repository, an
    /// unreadable key file) are failures.
    static func jobFile(_ file: String, line: Int, _ message: String, usage: Bool = true) -> JobError {
        JobError(usage ? .usage : .failure, line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)")
    }
}
