/// Placeholder until the vault lands.
public enum KyukyuVaultModule {}
