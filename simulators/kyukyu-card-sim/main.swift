import KyukyuCardSim
print("card simulator")
