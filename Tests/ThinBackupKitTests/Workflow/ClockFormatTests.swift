import Foundation
import Testing
import TestSupport
@testable import ThinBackupKit

/// `WorkflowClock.format` writes what Foundation's ISO8601DateFormatter writes (catalogs, owner
/// records and reports made before it stopped using the formatter are read and compared as text).
@Suite struct ClockFormatTests {
    @Test func formatsLikeISO8601DateFormatter() {
        let f = ISO8601DateFormatter()
        var rng = SeededRNG(seed: 8601)
        var times: [Double] = [0, 1, 59.999, 86_399.5, 951_782_400, 1_709_164_800, 1_796_083_200.25, 4_102_444_799, 253_402_300_799]
        for _ in 0..<2000 { times.append(Double(rng.next() % 4_102_444_800) + Double(rng.next() % 1000) / 1000) }
        for t in times {
            let d = Date(timeIntervalSince1970: t)
            #expect(WorkflowClock.format(d) == f.string(from: d), "at \(t)")
        }
    }

    @Test func aFormattedTimeParsesBack() throws {
        let d = try #require(WorkflowClock.parse("2026-02-29T23:59:59Z") ?? WorkflowClock.parse("2028-02-29T23:59:59Z"))
        #expect(WorkflowClock.parse(WorkflowClock.format(d)) == d)
        #expect(WorkflowClock.format(Date(timeIntervalSince1970: 1_830_297_600)) == "2028-01-01T00:00:00Z")
    }
}
