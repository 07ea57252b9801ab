/// Crew accounts and shift sessions (issue 8; being built).
public enum KyukyuCrew {}
