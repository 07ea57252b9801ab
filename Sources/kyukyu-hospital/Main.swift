// `kyukyu-hospital` (issue 9): being written. Until it lands it only says so.
import Foundation

@main
struct KyukyuHospital {
    static func main() {
        FileHandle.standardError.write(Data("kyukyu-hospital is not built yet (issue 9)\n".utf8))
        exit(69)
    }
}
