/// The edge service the paramedic's tablet talks to (issue 8; being built).
public enum KyukyuGateway {}
