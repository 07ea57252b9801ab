import KyukyuOnshi
/// Placeholder until the eligibility client lands.
public enum KyukyuEligibilityModule {}
