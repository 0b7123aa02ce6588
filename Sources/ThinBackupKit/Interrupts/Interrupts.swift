import Foundation
import PoolCore
#if canImport(Glibc)
import Glibc
#endif

/// Cleanups that must run however a command ends: normally, by an error, or by SIGINT/SIGTERM/SIGHUP.
///
/// A command registers a cleanup right after it takes something that outlives the process if
/// left behind (a reserved metadata snapshot, a suspended device), and calls `run()` on the
/// returned `Cleanup` when it is done (a `defer`): the cleanup runs exactly once, on whichever
/// path comes first. On a signal, a watcher thread (never the signal handler itself) runs every
/// registered cleanup, newest first, then re-raises the signal with its default action, so the
/// process ends with the status a shell expects (130 for SIGINT, 143 for SIGTERM). A second
/// signal while cleanups run ends the process at once.
///
///     let release = Interrupts.shared.register("release the metadata snapshot") { try? pool.release() }
///     defer { release.run() }
public final class Interrupts: @unchecked Sendable {
    public static let shared = Interrupts()

    /// One registered cleanup; `run()` runs it once and unregisters it.
    public final class Cleanup: @unchecked Sendable {
        public let name: String
        private let body: () -> Void
        private let lock = NSLock()
        private var finished = false
        fileprivate weak var owner: Interrupts?

        fileprivate init(name: String, body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }

        /// Runs the cleanup unless it already ran (or was dismissed); waits for a run in progress.
        public func run() {
            lock.lock()
            defer { lock.unlock() }
            guard !finished else { return }
            finished = true
            owner?.remove(self)
            body()
        }

        /// Forgets the cleanup without running it (the thing it would undo was handed on or undone otherwise).
        public func dismiss() {
            lock.lock()
            defer { lock.unlock() }
            finished = true
            owner?.remove(self)
        }
    }

    private let lock = NSLock()
    /// Held by a step in `uninterruptible`, and by the watcher from the moment it begins cleaning up.
    private let gate = NSRecursiveLock()
    private var interrupted = false
    private var registered: [Cleanup] = []
    private var installed = false
    /// Lines written to stderr when a signal arrives (tests read them; nil: stderr).
    public var log: (@Sendable (String) -> Void)?

    public init() {}

    /// Registers `body` to run on a signal, and returns the handle whose `run()` the caller calls when done.
    @discardableResult
    public func register(_ name: String, _ body: @escaping () -> Void) -> Cleanup {
        let c = Cleanup(name: name, body: body)
        c.owner = self
        lock.lock()
        registered.append(c)
        lock.unlock()
        return c
    }

    /// Runs `work`, with `cleanup` registered for its duration and run after it however it ends.
    public func guarded<T>(_ name: String, cleanup: @escaping () -> Void, _ work: () throws -> T) rethrows -> T {
        let c = register(name, cleanup)
        defer { c.run() }
        return try work()
    }

    /// Runs `work` whole with respect to signals: a signal arriving meanwhile waits for it to end
    /// before any cleanup runs (the watcher says it waits for `name`). Once the cleanups have begun,
    /// `work` is not started: the calling thread waits for the process to end. Never call it from a
    /// cleanup's body on another thread than the watcher (it would wait for ever).
    public func uninterruptible<T>(_ name: String, _ work: () throws -> T) rethrows -> T {
        gate.lock()
        // Only an outermost step waits: a nested one runs inside a step the watcher waits for.
        if depth == 0 && isInterrupted {
            gate.unlock()
            parkForever()
        }
        depth += 1
        if depth == 1 { setStep(name) }
        defer {
            depth -= 1
            if depth == 0 { setStep(nil) }
            gate.unlock()
        }
        return try work()
    }

    /// How deep the gate's holder is in `uninterruptible` steps (changed only with the gate held).
    private var depth = 0
    /// The outermost step running now (read by the watcher, under `lock`).
    private var stepName: String?

    private func setStep(_ name: String?) {
        lock.lock()
        stepName = name
        lock.unlock()
    }

    /// Whether a signal has begun the cleanups.
    public var isInterrupted: Bool {
        lock.lock()
        defer { lock.unlock() }
        return interrupted
    }

    /// Waits for the process to end when a signal has begun the cleanups (the watcher ends it
    /// with the signal's status); returns at once otherwise.
    public func parkIfInterrupted() {
        if isInterrupted { parkForever() }
    }

    private func parkForever() -> Never {
        while true { pause() }
    }

    /// Names of the cleanups registered now, oldest first.
    public var pending: [String] {
        lock.lock()
        defer { lock.unlock() }
        return registered.map(\.name)
    }

    fileprivate func remove(_ c: Cleanup) {
        lock.lock()
        registered.removeAll { $0 === c }
        lock.unlock()
    }

    /// Runs every registered cleanup, newest first (what a signal does before the process ends).
    public func runAll() {
        lock.lock()
        let all = registered.reversed()
        lock.unlock()
        for c in all { c.run() }
    }

    /// Installs the handlers for SIGINT, SIGTERM and SIGHUP (once per process; later calls do nothing).
    public func install() {
        lock.lock()
        defer { lock.unlock() }
        guard !installed else { return }
        installed = true
        // A parent may have left these blocked (a spawning test runner does): unblock them first,
        // so the watcher and every later thread inherit the open mask (raise() must not stay pending).
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        interruptPipe = fds[1]
        let readEnd = fds[0]
        let thread = Thread { [self] in watch(readEnd) }
        thread.name = "interrupts"
        thread.start()
        for s in [SIGINT, SIGTERM, SIGHUP] { signal(s, interruptsSignalHandler) }
    }

    private func watch(_ fd: Int32) {
        var byte: UInt8 = 0
        guard (try? sysCall("read", "the interrupt pipe") { read(fd, &byte, 1) }) == 1 else { return }
        let sig = Int32(byte)
        lock.lock()
        interrupted = true
        let step = stepName
        lock.unlock()
        // A step that must not be cut in two finishes first (the gate stays held: nothing new starts).
        if !gate.try() {
            let line = "thin-backup: interrupted by \(signalName(sig)); finishing \(step ?? "a step that cannot be cut") first\n"
            if let log { log(line) } else { ThinBackupMain.writeStderr(line) }
            gate.lock()
        }
        depth += 1    // the cleanups' own steps (on this thread) run inside this one
        let names = pending
        let line = "thin-backup: interrupted by \(signalName(sig))"
            + (names.isEmpty ? "\n" : "; cleaning up: \(names.reversed().joined(separator: ", "))\n")
        if let log { log(line) } else { ThinBackupMain.writeStderr(line) }
        runAll()
        signal(sig, SIG_DFL)
        raise(sig)
        _exit(128 + sig)
    }
}

/// Write end of the pipe the signal handler wakes the watcher with (-1 until installed).
nonisolated(unsafe) private var interruptPipe: Int32 = -1
/// Set by the first signal; a second one ends the process at once.
nonisolated(unsafe) private var interruptSeen: Int32 = 0

/// The signal handler: async-signal-safe calls only (write, _exit).
private func interruptsSignalHandler(_ sig: Int32) {
    if interruptSeen != 0 { _exit(128 + sig) }
    interruptSeen = sig
    var b = UInt8(truncatingIfNeeded: sig)
    _ = write(interruptPipe, &b, 1)
}

func signalName(_ sig: Int32) -> String {
    switch sig {
    case SIGINT: return "SIGINT"
    case SIGTERM: return "SIGTERM"
    case SIGHUP: return "SIGHUP"
    default: return "signal \(sig)"
    }
}
