// FLWR_* variables against flwr's real command tree (the mapping itself: ArgumentEnvironmentTests).
import ArgumentEnvironment
import ArgumentParser
import TestSupport
import XCTest
@testable import flwr

final class FlwrEnvironmentTests: XCTestCase {
    func testRealCommandTreeDeploy() throws {
        let args = try argumentsWithEnvironment(["deploy", "-f", "d.yaml"], root: Flwr.self,
                                                environment: ["FLWR_NAMESPACE": "fl", "FLWR_FILE": "other.yaml"])
        XCTAssertEqual(args, ["deploy", "--namespace=fl", "-f", "d.yaml"], "-f is given, so FLWR_FILE is not used")
        let deploy = try XCTUnwrap(try Flwr.parseAsRoot(args) as? Deploy)
        XCTAssertEqual(deploy.namespace, "fl")
        XCTAssertEqual(deploy.file, "d.yaml")
    }
}
