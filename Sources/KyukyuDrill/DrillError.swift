/// Why a drill could not run: a scenario that does not hold together, a part that did not start, or a step that
/// failed outside what the scenario asked for. The reason never carries patient data.
public struct DrillError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case scenario
        case startUp
        case step
    }

    private let code: Code
    /// What is wrong and, where it helps, what to do.
    public let reason: String

    private init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// The scenario file is unreadable or one of its values is out of range.
    public static func scenario(_ reason: String) -> Self { Self(.scenario, reason) }

    /// A part of the region (a simulator, a gateway, a receiver) could not be set up or started.
    public static func startUp(_ reason: String) -> Self { Self(.startUp, reason) }

    /// A step of an incident failed in a way the scenario did not ask for.
    public static func step(_ reason: String) -> Self { Self(.step, reason) }

    /// Whether this is a scenario problem (the command exits with a usage status for those).
    public var isScenarioProblem: Bool { code == .scenario }

    /// The reason, prefixed.
    public var description: String { "DrillError: \(reason)" }
}
