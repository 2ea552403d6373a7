// FLWR_* environment variables as a second source for every option of every subcommand.
//
// A container sets `FLWR_ROUNDS=10` instead of passing `--rounds 10`. No per-flag code: the
// subcommand's arguments are read from ArgumentParser's own description of the command tree
// (`_dumpHelp()`, the JSON behind `--experimental-dump-help`), so custom names, `--no-` inversions,
// option groups and arrays are exactly what the parser itself accepts. The variable for an option
// is `FLWR_` + its long name in upper snake case (`--min-clients` → `FLWR_MIN_CLIENTS`). The command
// line wins: a variable is used only when none of the option's names appear on the command line.
import ArgumentParser
import Foundation

/// Why the environment could not be turned into arguments.
public enum EnvironmentError: Error, CustomStringConvertible, Equatable {
    /// A boolean flag's variable holds something other than true/false/1/0/yes/no.
    case notABoolean(variable: String, value: String, option: String)
    /// A counted flag's variable holds neither a boolean nor a non-negative integer.
    case notACount(variable: String, value: String, option: String)
    /// ArgumentParser's description of the command tree could not be read.
    case unreadableCommandTree(String)

    public var description: String {
        switch self {
        case let .notABoolean(variable, value, option):
            return "\(variable)=\"\(value)\" is not a boolean for \(option); "
                + "set it to true/1/yes to pass \(option) or false/0/no to leave it out"
        case let .notACount(variable, value, option):
            return "\(variable)=\"\(value)\" is not a count for \(option); "
                + "set it to a non-negative integer (how many times to repeat the flag) or true/false"
        case let .unreadableCommandTree(reason):
            return "cannot read the command's options to apply FLWR_* variables (\(reason)); "
                + "unset the FLWR_* variables and pass flags instead"
        }
    }
}

/// One option set from the environment: which variable supplied it and the arguments it became.
public struct EnvironmentSetting: Equatable, Sendable {
    /// The variable, e.g. `FLWR_ROUNDS`.
    public var variable: String
    /// The arguments appended for it, e.g. `["--rounds=10"]`.
    public var arguments: [String]

    public init(variable: String, arguments: [String]) {
        self.variable = variable
        self.arguments = arguments
    }
}

/// The environment variable that feeds the option whose long name is `longName`
/// (`min-clients` → `FLWR_MIN_CLIENTS`).
public func environmentVariable(forLongName longName: String) -> String {
    "FLWR_" + longName.uppercased().replacingOccurrences(of: "-", with: "_")
}

/// `arguments` (as passed to `main(_:)`: without the program name) with every option of the
/// selected subcommand that is absent from the command line but set by its `FLWR_*` variable
/// inserted right after the subcommand path. Flags take true/1/yes (present) or false/0/no
/// (absent); `--x/--no-x` pairs take either; arrays take comma-separated values.
public func argumentsWithEnvironment(
    _ arguments: [String], root: ParsableCommand.Type, environment: [String: String]
) throws -> [String] {
    let (settings, insertAt) = try environmentSettings(arguments, root: root, environment: environment)
    var result = arguments
    result.insert(contentsOf: settings.flatMap(\.arguments), at: insertAt)
    return result
}

/// The settings `argumentsWithEnvironment` applies and the index in `arguments` where they go.
public func environmentSettings(
    _ arguments: [String], root: ParsableCommand.Type, environment: [String: String]
) throws -> (settings: [EnvironmentSetting], insertAt: Int) {
    guard environment.keys.contains(where: { $0.hasPrefix("FLWR_") }) else { return ([], arguments.count) }
    let tree = try commandTree(root)
    var command = tree
    var index = 0
    // Walk down the subcommand path: `flwr server ...` selects `server`.
    while let subcommands = command.subcommands, !subcommands.isEmpty {
        if index < arguments.count,
           let next = subcommands.first(where: {
               $0.commandName == arguments[index] || ($0.aliases ?? []).contains(arguments[index])
           }) {
            command = next
            index += 1
        } else if let fallback = command.defaultSubcommand,
                  let next = subcommands.first(where: { $0.commandName == fallback }) {
            command = next
        } else {
            break
        }
    }
    let given = Array(arguments[index...].prefix(while: { $0 != "--" }))
    let all = command.arguments ?? []
    // `--x/--no-x` (and `--enable-x/--disable-x`) are two flags to ArgumentParser; FLWR_X drives both.
    var flagsByName: [String: ArgumentDescription] = [:]
    for argument in all where argument.kind == .flag {
        for name in argument.names ?? [] where name.kind != .short { flagsByName[name.name] = argument }
    }
    func inverse(of name: String) -> ArgumentDescription? {
        if let flag = flagsByName["no-" + name] { return flag }
        if name.hasPrefix("enable-") { return flagsByName["disable-" + name.dropFirst("enable-".count)] }
        return nil
    }
    func isInverseHalf(_ name: String) -> Bool {
        (name.hasPrefix("no-") && flagsByName[String(name.dropFirst(3))] != nil)
            || (name.hasPrefix("disable-") && flagsByName["enable-" + name.dropFirst("disable-".count)] != nil)
    }
    var settings: [EnvironmentSetting] = []
    for argument in all where argument.kind != .positional {
        let longNames = (argument.names ?? []).filter { $0.kind != .short }
        guard let primary = argument.preferredName.flatMap({ $0.kind == .short ? nil : $0 }) ?? longNames.first,
              !builtInNames.contains(primary.name) else { continue }
        if argument.kind == .flag && isInverseHalf(primary.name) { continue }
        let negative = argument.kind == .flag ? inverse(of: primary.name) : nil
        let variable = environmentVariable(forLongName: primary.name)
        let names = (argument.names ?? []) + (negative?.names ?? [])
        guard let value = environment[variable], !names.contains(where: { isGiven($0, in: given) }) else { continue }
        let spelled = spelling(primary)
        switch argument.kind {
        case .option:
            let values = argument.isRepeating
                ? value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                : [value]
            settings.append(.init(variable: variable, arguments: values.map { "\(spelled)=\($0)" }))
        case .flag:
            if argument.isRepeating {
                guard let count = flagCount(value) else {
                    throw EnvironmentError.notACount(variable: variable, value: value, option: spelled)
                }
                settings.append(.init(variable: variable, arguments: Array(repeating: spelled, count: count)))
            } else {
                guard let on = parseBoolean(value) else {
                    throw EnvironmentError.notABoolean(variable: variable, value: value, option: spelled)
                }
                if on {
                    settings.append(.init(variable: variable, arguments: [spelled]))
                } else if let off = negative?.preferredName {
                    settings.append(.init(variable: variable, arguments: [spelling(off)]))
                }
            }
        case .positional:
            continue
        }
    }
    return (settings, index)
}

/// Options every command has that the environment must never set.
private let builtInNames: Set<String> = ["help", "version", "experimental-dump-help", "generate-completion-script"]

/// true/1/yes → true, false/0/no → false (any case, surrounding spaces ignored), else nil.
public func parseBoolean(_ value: String) -> Bool? {
    switch value.trimmingCharacters(in: .whitespaces).lowercased() {
    case "true", "1", "yes": return true
    case "false", "0", "no": return false
    default: return nil
    }
}

/// A counted flag's repetitions: a non-negative integer, or a boolean as 1/0.
private func flagCount(_ value: String) -> Int? {
    if let n = Int(value.trimmingCharacters(in: .whitespaces)), n >= 0, n <= 100 { return n }
    return parseBoolean(value).map { $0 ? 1 : 0 }
}

/// The name as typed on a command line.
private func spelling(_ name: ArgumentName) -> String {
    switch name.kind {
    case .long: return "--" + name.name
    case .short, .longWithSingleDash: return "-" + name.name
    }
}

/// Whether `name` appears in `tokens`, including `--name=value` and grouped short flags (`-vq`).
private func isGiven(_ name: ArgumentName, in tokens: [String]) -> Bool {
    switch name.kind {
    case .long:
        return tokens.contains { $0 == "--" + name.name || $0.hasPrefix("--" + name.name + "=") }
    case .longWithSingleDash:
        return tokens.contains { $0 == "-" + name.name || $0.hasPrefix("-" + name.name + "=") }
    case .short:
        return tokens.contains { token in
            guard token.hasPrefix("-"), !token.hasPrefix("--"), let first = token.dropFirst().first,
                  first.isLetter else { return false }
            return token.dropFirst().contains(Character(name.name))
        }
    }
}

// MARK: - ArgumentParser's command description (the subset of its ToolInfo JSON we read)

/// One command of the tree, as ArgumentParser describes it.
struct CommandDescription: Decodable {
    var commandName: String
    var aliases: [String]?
    var defaultSubcommand: String?
    var subcommands: [CommandDescription]?
    var arguments: [ArgumentDescription]?
}

/// One argument of a command.
struct ArgumentDescription: Decodable {
    /// positional, option or flag.
    enum Kind: String, Decodable { case positional, option, flag }
    var kind: Kind
    var isRepeating: Bool
    var names: [ArgumentName]?
    var preferredName: ArgumentName?
}

/// A name of an argument (`--min-clients`, `-v`).
struct ArgumentName: Decodable {
    /// How the name is spelled.
    enum Kind: String, Decodable { case long, short, longWithSingleDash }
    var kind: Kind
    var name: String
}

/// The command tree under `root`, read from ArgumentParser's JSON description.
func commandTree(_ root: ParsableCommand.Type) throws -> CommandDescription {
    struct Envelope: Decodable { var command: CommandDescription }
    do {
        return try JSONDecoder().decode(Envelope.self, from: Data(root._dumpHelp().utf8)).command
    } catch {
        throw EnvironmentError.unreadableCommandTree(String(describing: error))
    }
}
