import CTensorBoardProto
import FlowerCore
import Foundation
import Logging
import Testing
@testable import FlowerOps

/// The event file read back with libprotobuf-c's own unpacker (the cross-check with TensorBoard's
/// reader is OpsReleaseTests' tensorboard_events.py).
struct TensorBoardWriterTests {
    @Test func writesVersionThenOneEventPerRound() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("flwr-tb-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = try TensorBoardWriter(directory: dir, logger: Logger(label: "test"))
        let record = RoundRecord(round: 2, loss: 0.5, accuracy: 0.75, fitClients: 3, failures: 0, seconds: 1.25,
                                 fitMetrics: ["epsilon": .double(2)])
        writer.roundCompleted(record, of: 5)
        let records = try TFRecord.records(Array(try Data(contentsOf: URL(fileURLWithPath: writer.path))))
        #expect(records.count == 2)
        let first = try #require(records[0].withUnsafeBufferPointer { tensorboard__event__unpack(nil, $0.count, $0.baseAddress) })
        defer { tensorboard__event__free_unpacked(first, nil) }
        #expect(first.pointee.what_case == TENSORBOARD__EVENT__WHAT_FILE_VERSION)
        #expect(String(cString: first.pointee.file_version) == "brain.Event:2")
        let second = try #require(records[1].withUnsafeBufferPointer { tensorboard__event__unpack(nil, $0.count, $0.baseAddress) })
        defer { tensorboard__event__free_unpacked(second, nil) }
        #expect(second.pointee.step == 2)
        let summary = try #require(second.pointee.summary)
        var got: [String: Float] = [:]
        for i in 0 ..< summary.pointee.n_value {
            let v = try #require(summary.pointee.value[i])
            got[String(cString: v.pointee.tag)] = v.pointee.simple_value
        }
        #expect(got == ["accuracy": 0.75, "loss": 0.5, "round_seconds": 1.25, "epsilon": 2])
    }

    /// Virtual clock and FedBuff records add their clock and mean staleness; others do not.
    @Test func virtualClockRecordsAddVirtualTimeAndStaleness() {
        var record = RoundRecord(round: 4, loss: 0.5, accuracy: nil, fitClients: 5, failures: 0, seconds: 0.5)
        #expect(!TensorBoardWriter.scalars(of: record).contains { $0.tag == "virtual_time" || $0.tag == "staleness" })
        record.virtualTime = 12.5
        record.staleness = 1.25
        let tags = Dictionary(uniqueKeysWithValues: TensorBoardWriter.scalars(of: record).map { ($0.tag, $0.value) })
        #expect(tags == ["loss": 0.5, "round_seconds": 0.5, "virtual_time": 12.5, "staleness": 1.25])
    }
}
