# A pandas join-and-aggregate between two parties: a shop's orders
# (customer,amount) and a bank's customer segments (customer,segment).
# Output: total and mean amount per segment, as CSV for the analyst.
import mesatee


def main(ctx):
    orders = ctx.read_csv("orders")
    segments = ctx.read_csv("segments")
    joined = orders.merge(segments, on="customer", how="inner")
    agg = joined.groupby("segment")["amount"].agg(["sum", "mean", "count"]).reset_index()
    ctx.write_csv("report", agg.sort_values("segment"))
    ctx.set_result("segments=%d matched=%d" % (len(agg), len(joined)))
