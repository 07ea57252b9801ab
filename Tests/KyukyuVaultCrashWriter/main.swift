import KyukyuVault
print("crash writer")
