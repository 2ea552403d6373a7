// The flags of stopping and resuming a simulation, of emulating a slow site and of switching zlib
// off: what they set in the library's configuration, their refusals, and their FLWR_* variables.
import ArgumentEnvironment
import ArgumentParser
import FlowerRuntime
import Testing
@testable import flwr

@Suite struct EdgeFlagTests {
    @Test func checkpointAndResumeOfSimulate() throws {
        let c = try SimulateCommand.parse(["--checkpoint-dir", "ckpt", "--resume"]).config()
        #expect(c.checkpointDir == "ckpt")
        #expect(c.resume)
        #expect(c.checkpointPath == "ckpt/checkpoint.flwr")
        let plain = try SimulateCommand.parse([]).config()
        #expect(plain.checkpointDir == nil && !plain.resume)
        do {
            _ = try SimulateCommand.parse(["--resume"])
            Issue.record("--resume without --checkpoint-dir was accepted")
        } catch {
            #expect(SimulateCommand.message(for: error).contains("--resume continues from the checkpoint in --checkpoint-dir"))
        }
    }

    @Test func slowdownOfAClient() throws {
        #expect(try ClientCommand.parse(["--slowdown", "5"]).config().slowdown == 5)
        #expect(try ClientCommand.parse([]).config().slowdown == 1)
        for bad in ["0.5", "0", "-3"] {
            do {
                _ = try ClientCommand.parse(["--slowdown=\(bad)"])
                Issue.record("--slowdown \(bad) was accepted")
            } catch {
                #expect(ClientCommand.message(for: error).contains("--slowdown must be a finite factor of at least 1"))
            }
        }
    }

    @Test func noZlibOnSimulateAndServer() throws {
        #expect(try SimulateCommand.parse(["--transport", "tcp"]).config().zlib)
        #expect(try !SimulateCommand.parse(["--transport", "tcp", "--no-zlib"]).config().zlib)
        #expect(try ServerCommand.parse(["--host", "127.0.0.1"]).config().wire.compressionAllowed)
        #expect(try !ServerCommand.parse(["--host", "127.0.0.1", "--no-zlib"]).config().wire.compressionAllowed)
        do {
            _ = try SimulateCommand.parse(["--transport", "virtual", "--no-zlib"])
            Issue.record("--no-zlib with virtual clients was accepted")
        } catch {
            #expect(SimulateCommand.message(for: error).contains("--transport tcp"))
        }
    }

    @Test func environmentVariables() throws {
        let env = ["FLWR_ZLIB": "false", "FLWR_SLOWDOWN": "4", "FLWR_CHECKPOINT_DIR": "ck", "FLWR_RESUME": "true"]
        let sim = try XCTUnwrapCommand(try Flwr.parseAsRoot(try argumentsWithEnvironment(["simulate", "--transport", "tcp"], root: Flwr.self, environment: env)), as: SimulateCommand.self)
        let c = try sim.config()
        #expect(!c.zlib && c.resume && c.checkpointDir == "ck")
        let client = try XCTUnwrapCommand(try Flwr.parseAsRoot(try argumentsWithEnvironment(["client"], root: Flwr.self, environment: env)), as: ClientCommand.self)
        #expect(try client.config().slowdown == 4)
    }

    private func XCTUnwrapCommand<T>(_ command: any ParsableCommand, as type: T.Type) throws -> T {
        guard let t = command as? T else { throw ValidationError("parsed \(Swift.type(of: command)), expected \(T.self)") }
        return t
    }
}
