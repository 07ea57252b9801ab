import KyukyuCard
import Histogram
print("bench")
