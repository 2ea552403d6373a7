// FLWR_* variables fill absent options of any subcommand: checked on dummy commands covering
// Option<Int>, Option<String?> with a custom name, Flag, --x/--no-x, OptionGroup, arrays,
// nested subcommands and the `--` terminator (the real `flwr` tree: flwrTests/FlwrEnvironmentTests).
import ArgumentParser
import XCTest
@testable import ArgumentEnvironment

private struct Shared: ParsableArguments {
    @Option var dataDir: String?
    @Flag var verbose = false
}

private struct Serve: ParsableCommand {
    @Option var rounds: Int = 3
    @Option var minClients: Int?
    @Option(name: .customLong("server")) var address: String?
    @Flag var resume = false
    @Flag(inversion: .prefixedNo) var compress = true
    @Flag(name: .short) var v: Int
    @Option var tag: [String] = []
    @Flag(inversion: .prefixedEnableDisable) var cache = false
    @OptionGroup var shared: Shared
    @Argument var extra: [String] = []
}

private struct Leaf: ParsableCommand {
    @Option var depth: Int = 0
}

private struct Branch: ParsableCommand {
    static let configuration = CommandConfiguration(subcommands: [Leaf.self])
}

private struct Root: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "root", subcommands: [Serve.self, Branch.self])
}

final class EnvironmentTests: XCTestCase {
    private func serve(_ args: [String], _ env: [String: String]) throws -> Serve {
        let full = try argumentsWithEnvironment(["serve"] + args, root: Root.self, environment: env)
        let parsed = try Root.parseAsRoot(full)
        return try XCTUnwrap(parsed as? Serve, "parsed \(type(of: parsed)) from \(full)")
    }

    func testVariableNameIsUpperSnakeOfLongName() {
        XCTAssertEqual(environmentVariable(forLongName: "min-clients"), "FLWR_MIN_CLIENTS")
        XCTAssertEqual(environmentVariable(forLongName: "rounds"), "FLWR_ROUNDS")
    }

    func testIntOptionFromEnvironment() throws {
        XCTAssertEqual(try serve([], ["FLWR_ROUNDS": "10"]).rounds, 10)
        XCTAssertEqual(try serve([], ["FLWR_MIN_CLIENTS": "4"]).minClients, 4)
        XCTAssertEqual(try serve([], [:]).rounds, 3)
    }

    func testNegativeValueIsPassedAsOneToken() throws {
        XCTAssertEqual(try serve([], ["FLWR_MIN_CLIENTS": "-1"]).minClients, -1)
    }

    func testCommandLineWinsInBothSpellings() throws {
        XCTAssertEqual(try serve(["--rounds", "5"], ["FLWR_ROUNDS": "10"]).rounds, 5)
        XCTAssertEqual(try serve(["--rounds=6"], ["FLWR_ROUNDS": "10"]).rounds, 6)
    }

    func testCustomLongNameOptionalString() throws {
        XCTAssertEqual(try serve([], ["FLWR_SERVER": "flwr-server:8080"]).address, "flwr-server:8080")
        XCTAssertNil(try serve([], ["FLWR_ADDRESS": "x"]).address, "the property name is not a variable")
    }

    func testBooleanFlag() throws {
        for on in ["true", "1", "yes", "YES", " True "] { XCTAssertTrue(try serve([], ["FLWR_RESUME": on]).resume, on) }
        for off in ["false", "0", "no"] { XCTAssertFalse(try serve([], ["FLWR_RESUME": off]).resume, off) }
        XCTAssertThrowsError(try serve([], ["FLWR_RESUME": "maybe"])) { error in
            XCTAssertEqual(error as? EnvironmentError,
                           .notABoolean(variable: "FLWR_RESUME", value: "maybe", option: "--resume"))
            XCTAssertTrue("\(error)".contains("FLWR_RESUME=\"maybe\""), "\(error)")
        }
    }

    func testInvertibleFlag() throws {
        XCTAssertFalse(try serve([], ["FLWR_COMPRESS": "false"]).compress)
        XCTAssertTrue(try serve([], ["FLWR_COMPRESS": "true"]).compress)
        XCTAssertTrue(try serve(["--compress"], ["FLWR_COMPRESS": "no"]).compress, "command line wins")
        XCTAssertFalse(try serve(["--no-compress"], ["FLWR_COMPRESS": "yes"]).compress, "either name counts as given")
    }

    func testEnableDisableFlag() throws {
        XCTAssertTrue(try serve([], ["FLWR_ENABLE_CACHE": "1"]).cache)
        XCTAssertTrue(try serve(["--enable-cache"], ["FLWR_ENABLE_CACHE": "0"]).cache, "command line wins")
        XCTAssertFalse(try serve(["--disable-cache"], ["FLWR_ENABLE_CACHE": "yes"]).cache, "either name counts as given")
        XCTAssertFalse(try serve([], ["FLWR_DISABLE_CACHE": "yes"]).cache, "the negative half has no variable")
    }

    func testShortOnlyFlagIsNotMapped() throws {
        XCTAssertEqual(try serve([], ["FLWR_V": "3"]).v, 0)
        XCTAssertEqual(try serve(["-vv"], [:]).v, 2)
    }

    func testOptionGroupMembers() throws {
        let s = try serve([], ["FLWR_DATA_DIR": "/data", "FLWR_VERBOSE": "1"])
        XCTAssertEqual(s.shared.dataDir, "/data")
        XCTAssertTrue(s.shared.verbose)
    }

    func testArrayFromCommaSeparatedValues() throws {
        XCTAssertEqual(try serve([], ["FLWR_TAG": "a, b,,c"]).tag, ["a", "b", "c"])
        XCTAssertEqual(try serve(["--tag", "x"], ["FLWR_TAG": "a,b"]).tag, ["x"])
    }

    func testTerminatorAndPositionals() throws {
        let s = try serve(["--", "--rounds"], ["FLWR_ROUNDS": "7"])
        XCTAssertEqual(s.rounds, 7, "--rounds after -- is a positional, not the option")
        XCTAssertEqual(s.extra, ["--rounds"])
    }

    func testNestedSubcommand() throws {
        let args = try argumentsWithEnvironment(["branch", "leaf"], root: Root.self, environment: ["FLWR_DEPTH": "2"])
        XCTAssertEqual(args, ["branch", "leaf", "--depth=2"])
        XCTAssertEqual((try Root.parseAsRoot(args) as? Leaf)?.depth, 2)
    }

    func testUnrelatedVariablesLeaveArgumentsUnchanged() throws {
        let args = ["serve", "--rounds", "4"]
        XCTAssertEqual(try argumentsWithEnvironment(args, root: Root.self,
                                                    environment: ["FLWR_PORT": "1", "PATH": "/bin"]), args)
        XCTAssertEqual(try argumentsWithEnvironment(args, root: Root.self, environment: [:]), args)
    }

    func testSettingsAreInsertedAfterTheSubcommandPath() throws {
        let (settings, at) = try environmentSettings(["serve", "x"], root: Root.self,
                                                     environment: ["FLWR_ROUNDS": "9", "FLWR_RESUME": "yes"])
        XCTAssertEqual(at, 1)
        XCTAssertEqual(settings.map(\.variable).sorted(), ["FLWR_RESUME", "FLWR_ROUNDS"])
        XCTAssertEqual(Set(settings.flatMap(\.arguments)), ["--rounds=9", "--resume"])
    }
}
