import KyukyuGateway

/// `kyukyu-gateway` (issue 8; being built).
@main
struct GatewayMain {
    static func main() {
        print("kyukyu-gateway: being built (issue 8)")
    }
}
