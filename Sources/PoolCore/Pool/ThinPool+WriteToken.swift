/// A per-device write token: the annotation `written.<dev>`, given a new random value by the first
/// change of a device's data or mappings in each transaction (`write`, `discard`, `mapWritten`)
/// and saved with that transaction's sidecar (before its metadata commit: a crash in between leaves
/// a changed token over unchanged data, never the reverse). An upper layer that keeps something
/// derived from a device's content (the receiver's per-block digest map) records the token with it
/// and trusts its copy only while the token is unchanged. Deleting the device drops it (a note
/// named `<owner>.<dev>`); a device never written has none.
extension ThinPool {
    /// The device's write token as of the open transaction (nil: never written since it was created).
    public func writeToken(of dev: UInt64) -> UInt64? {
        annotation("written.\(dev)").flatMap { UInt64($0, radix: 16) }
    }

    /// Gives `dev` a new write token, once a transaction (again after the sidecar was reloaded).
    func noteWritten(_ dev: UInt64) throws {
        let key = "written.\(dev)"
        if let t = writtenTokens[dev], annotation(key) == t { return }
        let t = String(UInt64.random(in: 1...UInt64.max), radix: 16)
        try setAnnotation(key, t)
        writtenTokens[dev] = t
    }
}
