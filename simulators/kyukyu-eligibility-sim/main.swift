import KyukyuEligibilitySim
print("eligibility stub")
