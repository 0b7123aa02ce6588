import CoreMetrics
import Foundation
import Prometheus

/// serve's metrics, recorded through swift-metrics into a Prometheus registry of this server's
/// own (no process-wide bootstrap), rendered by swift-prometheus for `GET /metrics`.
final class ReceiverMetrics: Sendable {
    static let states = ["complete", "failed", "refused", "interrupted"]
    static let errorKinds = ["unauthorized", "bad_request", "conflict", "not_found", "connection"]

    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let startedAt: Double
    private let startSeconds: Double
    private let uptime: CoreMetrics.Gauge
    private let active: CoreMetrics.Meter
    private let bytes: CoreMetrics.Counter
    private let receives: [String: CoreMetrics.Counter]
    private let errors: [String: CoreMetrics.Counter]

    init() {
        let factory = PrometheusMetricsFactory(registry: registry)
        self.factory = factory
        startedAt = ProgressMeter.now()
        startSeconds = Date().timeIntervalSince1970
        uptime = Gauge(label: "thin_backup_serve_uptime_seconds", factory: factory)
        active = Meter(label: "thin_backup_serve_receives_active", factory: factory)
        bytes = Counter(label: "thin_backup_serve_received_bytes_total", factory: factory)
        receives = Dictionary(uniqueKeysWithValues: Self.states.map {
            ($0, Counter(label: "thin_backup_serve_receives_total", dimensions: [("state", $0)], factory: factory))
        })
        errors = Dictionary(uniqueKeysWithValues: Self.errorKinds.map {
            ($0, Counter(label: "thin_backup_serve_errors_total", dimensions: [("kind", $0)], factory: factory))
        })
        Gauge(label: "thin_backup_serve_start_time_seconds", factory: factory).record(startSeconds)
        Gauge(label: "thin_backup_build_info", dimensions: [("version", ThinBackupVersion.current)], factory: factory).record(1)
        // Present from the start, at 0.
        bytes.increment(by: 0)
        for c in receives.values { c.increment(by: 0) }
        for c in errors.values { c.increment(by: 0) }
        active.set(0)
    }

    func receiveStarted() { active.increment(by: 1) }

    /// A receive ended in `state` (one of `states`).
    func receiveEnded(_ state: String) {
        active.decrement(by: 1)
        receives[state]?.increment()
    }

    func received(_ n: Int) { bytes.increment(by: n) }

    /// A refused or broken request, by kind (one of `errorKinds`).
    func error(_ kind: String) { errors[kind]?.increment() }

    /// The Prometheus text exposition, uptime as of now.
    func render() -> [UInt8] {
        uptime.record(ProgressMeter.now() - startedAt)
        return registry.emitToBuffer()
    }
}
