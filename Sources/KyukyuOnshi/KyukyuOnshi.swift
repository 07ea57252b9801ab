/// Placeholder until the onshi message models land.
public enum KyukyuOnshiModule {}
