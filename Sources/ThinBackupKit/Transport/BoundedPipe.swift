import Delta
import Foundation

/// A byte FIFO between two threads with a fixed capacity: the bridge between push-style
/// producers (a `ByteSink` fed by the stream encoder, curl's write callback) and pull-style
/// consumers (curl's read callback; as a `ByteSource`, the decoder).
///
/// `write` blocks while the pipe is full, `read` while it is empty; either side can fail the
/// pipe, after which `write` throws that error at once and `read` after the bytes already buffered. Memory never exceeds
/// `capacity` plus one write.
final class BoundedPipe: ByteSource, @unchecked Sendable {
    private let condition = NSCondition()
    private var chunks: [[UInt8]] = []
    private var head = 0
    private var headOffset = 0
    private var buffered = 0
    private var closed = false
    private var failure: (any Error)?
    let capacity: Int
    /// Bytes handed to the reader so far.
    private(set) var totalRead: UInt64 = 0

    init(capacity: Int = 4 << 20) {
        self.capacity = capacity
    }

    /// Appends `bytes`, waiting for room. Throws the failure if the pipe was failed.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes
        while !rest.isEmpty {
            condition.lock()
            while buffered >= capacity && failure == nil { condition.wait() }
            if let failure { condition.unlock(); throw failure }
            let n = min(rest.count, max(capacity - buffered, 64 << 10))
            chunks.append(Array(rest.prefix(n)))
            buffered += n
            condition.broadcast()
            condition.unlock()
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(n))
        }
    }

    /// Appends `bytes` without waiting (an event loop must not block): the producer watches
    /// `isFull` and stops reading its input until `onDrain` runs. Dropped after a failure.
    func append(_ bytes: UnsafeRawBufferPointer) {
        condition.lock()
        defer { condition.unlock() }
        guard failure == nil, !bytes.isEmpty else { return }
        chunks.append(Array(bytes))
        buffered += bytes.count
        condition.broadcast()
    }

    /// True while the buffered bytes reach the capacity.
    var isFull: Bool {
        condition.lock()
        defer { condition.unlock() }
        return buffered >= capacity
    }

    /// Called (on the reader's thread) when a read brings the buffer from full to below half.
    nonisolated(unsafe) var onDrain: (() -> Void)?

    /// Marks the end of the data: the reader gets 0 after the buffered bytes.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Fails the pipe: both sides throw `error` from now on (the first failure wins).
    func fail(_ error: any Error) {
        condition.lock()
        if failure == nil { failure = error }
        condition.broadcast()
        condition.unlock()
    }

    var error: (any Error)? {
        condition.lock()
        defer { condition.unlock() }
        return failure
    }

    /// Reads up to `buffer.count` bytes, waiting for data; 0 at the end (after `close`).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        condition.lock()
        defer { condition.unlock() }
        while buffered == 0 && !closed && failure == nil { condition.wait() }
        // Bytes that arrived before a failure are still delivered (a receive gets as far as it can).
        if buffered == 0 {
            if let failure { throw failure }
            return 0
        }
        var copied = 0
        while copied < buffer.count, head < chunks.count {
            let chunk = chunks[head]
            let n = min(buffer.count - copied, chunk.count - headOffset)
            chunk.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(rebasing: buffer[copied..<copied + n])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: src[headOffset..<headOffset + n]))
            }
            copied += n
            headOffset += n
            if headOffset == chunk.count {
                chunks[head] = []
                head += 1
                headOffset = 0
            }
        }
        if head > 256 || head == chunks.count {
            chunks.removeFirst(head)
            head = 0
        }
        let wasFull = buffered >= capacity / 2
        buffered -= copied
        totalRead += UInt64(copied)
        condition.broadcast()
        if wasFull && buffered < capacity / 2, let onDrain { onDrain() }
        return copied
    }
}

/// Runs `body` on a new thread and lets another thread wait for its result.
final class Worker<T>: @unchecked Sendable {
    private let condition = NSCondition()
    private var result: Result<T, any Error>?

    /// `body` runs on the new thread only; the caller must not share what it captures
    /// without synchronisation (the pipes and counters it uses are thread-safe).
    init(name: String, _ body: @escaping () throws -> T) {
        nonisolated(unsafe) let body = body
        let thread = Thread { [self] in
            let r = Result { try body() }
            condition.lock()
            result = r
            condition.broadcast()
            condition.unlock()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Waits for the thread to finish and returns its value or throws its error.
    func wait() throws -> T {
        condition.lock()
        while result == nil { condition.wait() }
        let r = result!
        condition.unlock()
        return try r.get()
    }

    var isDone: Bool {
        condition.lock()
        defer { condition.unlock() }
        return result != nil
    }
}
