import KyukyuCard
print("kyukyu")
