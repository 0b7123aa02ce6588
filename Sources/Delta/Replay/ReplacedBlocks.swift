import Dispatch

/// The old content of blocks a receive replaces, read back for the content digest: the caller's
/// thread reads a chunk into one of two buffers, another thread sums its blocks' contributions
/// (`ContentDigest.sum`) while the caller goes on writing the new blocks and reading the next chunk.
/// Chunks of at most `chunk` bytes (1 MiB of whole blocks), so only 2 MiB are ever touched.
final class ReplacedBlocks: @unchecked Sendable {
    let chunk: Int
    private let buffers: [UnsafeMutableRawBufferPointer]
    /// Signalled while buffer k is free (not being hashed).
    private let idle = [DispatchSemaphore(value: 1), DispatchSemaphore(value: 1)]
    private let queue = DispatchQueue(label: "thin-backup.replaced-blocks")
    private var turn = 0
    /// Written on `queue` only; read by `take` after waiting for both buffers.
    private var sum = Digest128.zero

    /// `blockSize` bytes a block; chunks of whole blocks up to `limit` (at least one block).
    init(blockSize: Int, limit: Int = 1 << 20) {
        let bs = max(blockSize, 1)
        let c = max(1, limit / bs) * bs
        chunk = c
        let both = PageBuffer.allocate(2 * c)
        buffers = [UnsafeMutableRawBufferPointer(rebasing: both[0..<c]), UnsafeMutableRawBufferPointer(rebasing: both[c..<2 * c])]
    }

    deinit {
        // A sum still running reads its buffer. (Signalled again: libdispatch traps on a semaphore
        // freed below its initial value.)
        for s in idle { s.wait() }
        for s in idle { s.signal() }
        PageBuffer.release(UnsafeMutableRawBufferPointer(start: buffers[0].baseAddress, count: 2 * chunk))
    }

    /// Blocks per chunk.
    func blocksPerChunk(_ blockSize: Int) -> Int { chunk / max(blockSize, 1) }

    /// Has `read` fill `count` bytes (at most `chunk`) of a free buffer with blocks from `first`, then
    /// sums their contributions on another thread.
    func add(_ count: Int, first: UInt64, blockSize: Int, _ read: (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        precondition(count <= chunk)
        let k = turn
        turn ^= 1
        idle[k].wait()
        do {
            try read(UnsafeMutableRawBufferPointer(rebasing: buffers[k][0..<count]))
        } catch {
            idle[k].signal()
            throw error
        }
        queue.async { [self] in
            let s = ContentDigest.sum(blocks: UnsafeRawBufferPointer(rebasing: buffers[k][0..<count]), from: first, blockSize: blockSize)
            sum.high &+= s.high
            sum.low &+= s.low
            idle[k].signal()
        }
    }

    /// Waits for the sums in flight and returns the total of the chunks added since the last call.
    func take() -> Digest128 {
        for s in idle { s.wait() }
        let t = sum
        sum = .zero
        for s in idle { s.signal() }
        return t
    }
}
