# bench/python: a pandas group-by over CSV rows "k,v" (k: group id, v: a
# float). As a task it reads input slot "data"; run by plain python3 it reads
# the plaintext file named on the command line. The same compute() both ways.
import pandas as pd


def compute(f):
    df = pd.read_csv(f)
    g = df.groupby("k")["v"].agg(["sum", "mean", "count"])
    return "groups=%d rows=%d sum=%.6g" % (len(g), int(g["count"].sum()), g["sum"].sum())


def entrypoint(argv):
    import mesatee
    return compute(mesatee.open_input("data"))


if __name__ == "__main__":
    # compute-only: from after the imports (the file's read included, as the
    # task's decryption is), to stderr; the result to stdout
    import sys, time
    t0, c0 = time.perf_counter(), time.process_time()
    with open(sys.argv[1], "rb") as f:
        r = compute(f)
    print("compute_ms %d cpu_ms %d" % ((time.perf_counter() - t0) * 1000,
                                      (time.process_time() - c0) * 1000), file=sys.stderr)
    print(r)
