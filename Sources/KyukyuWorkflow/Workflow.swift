/// One incident's workflow over the card, eligibility and vault (issue 8; being built).
public enum KyukyuWorkflow {}
