import KyukyuOnshi
/// Placeholder until the eligibility stub lands.
public enum KyukyuEligibilitySimModule {}
