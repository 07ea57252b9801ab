import KyukyuCardSim
/// Placeholder.
public enum KyukyuTestbedModule {}
