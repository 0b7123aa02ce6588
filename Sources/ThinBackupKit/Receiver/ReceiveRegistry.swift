import Foundation
import ReceiverRequest

/// The server's bookkeeping: which devices are receiving now (one receive per device), how
/// the last receive of each device ended, and every receive thread (so `stop` can wait).
final class ReceiveRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var active: [UInt64: Active] = [:]
    private var last: [UInt64: (state: String, message: String)] = [:]
    let receiver: any StreamReceiving

    struct Active {
        var streamID: String
        var startOffset: UInt64
        var pipe: BoundedPipe
    }

    init(receiver: any StreamReceiving) {
        self.receiver = receiver
    }

    func status(_ device: UInt64) -> ReceiveStatus {
        lock.lock()
        let a = active[device], l = last[device]
        lock.unlock()
        if let a {
            return ReceiveStatus(device: device, state: "receiving", offset: a.startOffset + a.pipe.totalRead, streamID: a.streamID)
        }
        if let p = try? receiver.pendingReceive(device: device) {
            return ReceiveStatus(device: device, state: "interrupted", offset: p.resumeOffset, streamID: p.streamID,
                          message: l?.message, resumeToken: p.resumeToken)
        }
        if let l { return ReceiveStatus(device: device, state: l.state, offset: 0, message: l.message) }
        return ReceiveStatus(device: device, state: "idle", offset: 0)
    }

    /// Claims `device` for a receive; false when one is running.
    func begin(_ device: UInt64, _ entry: Active) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard active[device] == nil else { return false }
        active[device] = entry
        return true
    }

    func end(_ device: UInt64, state: String, message: String) {
        lock.lock()
        active[device] = nil
        last[device] = (state, message)
        lock.unlock()
    }

    func release(_ device: UInt64) {
        lock.lock()
        active[device] = nil
        lock.unlock()
    }

    /// Fails every running receive's input (the server is stopping).
    func failAll(_ error: any Error) {
        lock.lock()
        let pipes = active.values.map(\.pipe)
        lock.unlock()
        pipes.forEach { $0.fail(error) }
    }

    private var workers: [Worker<Void>] = []
    func track(_ w: Worker<Void>) {
        lock.lock()
        workers.removeAll { $0.isDone }
        workers.append(w)
        lock.unlock()
    }

    func waitForWorkers() {
        lock.lock()
        let ws = workers
        lock.unlock()
        for w in ws { try? w.wait() }
    }
}
