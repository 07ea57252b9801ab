import CPCSCLite
/// Placeholder.
public enum KyukyuCardModule {}
