// The client's partition: --partition, FLWR_PARTITION, JOB_COMPLETION_INDEX, hostname ordinal.
import CIFARLoader
import FlowerIdentity
import FlowerRuntime
import Foundation
import Logging
import XCTest

final class PartitionResolverTests: XCTestCase {
    func testPrecedence() throws {
        let env = ["FLWR_PARTITION": "5", "JOB_COMPLETION_INDEX": "7"]
        XCTAssertEqual(try resolvePartition(flag: 2, environment: env, hostname: "flwr-client-9"), 2)
        XCTAssertEqual(try resolvePartition(flag: nil, environment: env, hostname: "flwr-client-9"), 5)
        XCTAssertEqual(try resolvePartition(flag: nil, environment: ["JOB_COMPLETION_INDEX": "7"],
                                            hostname: "flwr-client-9"), 7)
        XCTAssertEqual(try resolvePartition(flag: nil, environment: [:], hostname: "flwr-client-9"), 9)
    }

    func testEmptyVariablesCountAsUnset() throws {
        XCTAssertEqual(try resolvePartition(flag: nil, environment: ["FLWR_PARTITION": "", "JOB_COMPLETION_INDEX": " "],
                                            hostname: "fl-deployment-client-3"), 3)
    }

    func testHostnameOrdinals() {
        XCTAssertEqual(hostnameOrdinal("flwr-client-3"), 3)
        XCTAssertEqual(hostnameOrdinal("flwr-client-12.flwr.default.svc.cluster.local"), 12)
        XCTAssertEqual(hostnameOrdinal("flwr-client-0"), 0)
        XCTAssertNil(hostnameOrdinal("flwr-server"))
        XCTAssertNil(hostnameOrdinal("client3"))
        XCTAssertNil(hostnameOrdinal("flwr-client-"))
        XCTAssertNil(hostnameOrdinal("node-1a"))
    }

    func testErrorsNameTheSourceAndTheRemedy() {
        XCTAssertThrowsError(try resolvePartition(flag: nil, environment: ["JOB_COMPLETION_INDEX": "abc"], hostname: nil)) {
            XCTAssertEqual($0 as? PartitionError, .notAnIndex(source: "JOB_COMPLETION_INDEX", value: "abc"))
        }
        XCTAssertThrowsError(try resolvePartition(flag: nil, environment: ["FLWR_PARTITION": "-1"], hostname: nil)) {
            XCTAssertEqual($0 as? PartitionError, .notAnIndex(source: "FLWR_PARTITION", value: "-1"))
        }
        XCTAssertThrowsError(try resolvePartition(flag: -2, environment: [:], hostname: nil)) {
            XCTAssertEqual($0 as? PartitionError, .negativeFlag(-2))
        }
        XCTAssertThrowsError(try resolvePartition(flag: nil, environment: [:], hostname: "flwr-server")) {
            XCTAssertEqual($0 as? PartitionError, .unresolved(hostname: "flwr-server"))
            let message = "\($0)"
            XCTAssertTrue(message.contains("\"flwr-server\"") && message.contains("--partition"), message)
        }
    }

    // MARK: own data or a partition

    func testNoPartitionFlagsMeansTheWholeFolderEvenInAnIndexedPod() throws {
        let env = ["JOB_COMPLETION_INDEX": "3"]
        XCTAssertEqual(try resolveDataSelection(partitionFlag: nil, asksForSplit: false, numPartitions: 10,
                                                environment: env, hostname: "site-7"), .whole)
        // Any partition flag brings the split back, the index from wherever the pod has it.
        XCTAssertEqual(try resolveDataSelection(partitionFlag: nil, asksForSplit: true, numPartitions: 10,
                                                environment: env, hostname: "site-7"), .partition(index: 3, count: 10))
        XCTAssertEqual(try resolveDataSelection(partitionFlag: 2, asksForSplit: false, numPartitions: 10,
                                                environment: env, hostname: nil), .partition(index: 2, count: 10))
        XCTAssertThrowsError(try resolveDataSelection(partitionFlag: 4, asksForSplit: true, numPartitions: 4,
                                                      environment: [:], hostname: nil)) {
            XCTAssertEqual($0 as? PartitionError, .outOfRange(index: 4, count: 4))
            XCTAssertTrue("\($0)".contains("outside 0..<4"), "\($0)")
        }
    }

    func testDeployAndClientShareTheNames() {
        XCTAssertEqual(IdentityContract.partitionVariable, "FLWR_PARTITION")
        XCTAssertEqual(IdentityContract.jobIndexVariable, "JOB_COMPLETION_INDEX")
        XCTAssertEqual(IdentityContract.clientIDVariable, "FLWR_CLIENT_ID")
        XCTAssertEqual(try resolvePartition(flag: nil, environment: [IdentityContract.partitionVariable: "4"], hostname: nil), 4)
    }

    func testDefaultIdentity() {
        XCTAssertEqual(defaultClientID(.partition(index: 3, count: 10), hostname: "x"), "partition-3")
        XCTAssertEqual(defaultClientID(.whole, hostname: "fl-edge-client-2.fl-edge-clients.fl.svc"), "fl-edge-client-2")
        XCTAssertEqual(defaultClientID(.whole, hostname: ""), "client")
    }

    /// `.whole` trains on every training example as read and evaluates on the folder's test set;
    /// a partition takes only its share.
    func testWholeSelectionKeepsEveryExample() throws {
        func dataset(_ n: Int) -> Dataset {
            Dataset(floats: (0 ..< n * 4).map { Float($0) / Float(n * 4) },
                    labels: (0 ..< n).map { Int32($0 % 2) }, channels: 1, height: 2, width: 2, classes: 2, name: "site")
        }
        let split = DatasetSplit(train: dataset(12), test: dataset(5))
        let builder = ClientDataBuilder(numPartitions: 3, scheme: .iid, seed: 1, privacy: DataPrivacy(),
                                        maxTrainExamples: nil, logger: Logger(label: "test"))
        let whole = try builder.build(split: split, selection: .whole, ledgerDirectory: NSTemporaryDirectory())
        XCTAssertEqual(whole.train.count, 12)
        XCTAssertEqual(whole.train.dataset.labels, split.train.labels)
        XCTAssertEqual(whole.eval?.count, 5)
        let part = try builder.build(split: split, selection: .partition(index: 1, count: 3), ledgerDirectory: NSTemporaryDirectory())
        XCTAssertEqual(part.train.count, 4)
        XCTAssertEqual(part.eval?.count, 2)  // test examples 1 and 4

        let noTest = DatasetSplit(train: dataset(7), test: dataset(7).subset([]))
        XCTAssertNil(try builder.build(split: noTest, selection: .whole, ledgerDirectory: NSTemporaryDirectory()).eval)
        let empty = DatasetSplit(train: dataset(3).subset([]), test: dataset(1))
        XCTAssertThrowsError(try builder.build(split: empty, selection: .whole, ledgerDirectory: NSTemporaryDirectory())) {
            XCTAssertTrue("\($0)".contains("no training examples"), "\($0)")
        }
    }
}
