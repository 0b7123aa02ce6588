import Foundation
import Prometheus

/// The node_exporter textfile `run --metrics-file F` writes: the job's and each volume's last
/// start, last success, duration, bytes and backups kept, in Prometheus text format (rendered by
/// swift-prometheus), written to F.tmp-PID and renamed over F so the collector never reads half.
enum JobMetrics {
    static func render(job: JobConfig, state: JobState, report: JobReport) -> String {
        let registry = PrometheusCollectorRegistry()
        func gauge(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Double?) {
            guard let value else { return }
            let descriptor = MetricNameDescriptor(namespace: "thin_backup", metricName: name, unitName: "", helpText: help)
            registry.makeGauge(descriptor: descriptor, labels: labels).set(value)
        }
        let j = [("job", job.name)]
        gauge("job_last_start_timestamp_seconds", "When the job's last run started (Unix time).", j, state.lastStart)
        gauge("job_last_end_timestamp_seconds", "When the job's last run ended (Unix time).", j, state.lastEnd)
        gauge("job_last_success_timestamp_seconds", "When the job's last fully successful run started (Unix time).", j, state.lastSuccess)
        gauge("job_last_verify_timestamp_seconds", "When the job last verified its repository successfully (Unix time).", j, state.lastVerify)
        gauge("job_duration_seconds", "How long the job's last run took.", j, report.seconds)
        gauge("job_exit_code", "The exit code of the job's last run (0 ok, 1 failed, 3 some volumes failed).", j, Double(report.exitCode))
        gauge("job_volumes", "Volumes in the job file.", j, Double(job.volumes.count))
        for v in job.volumes {
            guard let s = state.volumes[v.name] else { continue }
            let l = [("job", job.name), ("volume", v.name)]
            gauge("volume_last_start_timestamp_seconds", "When the volume's last backup started (Unix time).", l, s.lastStart)
            gauge("volume_last_success_timestamp_seconds", "When the volume's last successful backup was taken (Unix time).", l, s.lastSuccess)
            gauge("volume_last_run_success", "1 when the volume's backup in the last run succeeded, else 0.", l, s.lastRunOK ? 1 : 0)
            gauge("volume_duration_seconds", "How long the volume's last successful backup took.", l, s.lastSeconds)
            gauge("volume_read_bytes", "Bytes of thin-device data the last successful backup read.", l, Double(s.bytesRead))
            gauge("volume_written_bytes", "Stream bytes the last successful backup wrote to the repository.", l, Double(s.bytesWritten))
            gauge("volume_backups_kept", "Backups of the volume in the repository after the last run's prune.", l, Double(s.backupsKept))
        }
        return registry.emitToString()
    }

    static func write(job: JobConfig, state: JobState, report: JobReport, to path: String) throws {
        try atomicWrite(Data(render(job: job, state: state, report: report).utf8), to: path)
    }
}
