// The client's partition: --partition, FLWR_PARTITION, JOB_COMPLETION_INDEX, hostname ordinal.
import XCTest
@testable import flwr

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
}
