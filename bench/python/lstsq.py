# bench/python: a NumPy least-squares fit over rows of 28 features and a
# target (raw little-endian float64, 29 per row: the HIGGS shape). As a task
# it reads input slot "data"; run by plain python3 it reads the plaintext file
# named on the command line. The same compute() both ways.
import numpy as np


def compute(raw):
    a = np.frombuffer(raw, dtype="<f8").reshape(-1, 29)
    X = np.column_stack([np.ones(len(a)), a[:, :28]])
    coef, *_ = np.linalg.lstsq(X, a[:, 28], rcond=None)
    return "rows=%d coef0=%.6f coef1=%.6f" % (len(a), coef[0], coef[1])


def entrypoint(argv):
    import mesatee
    # the decrypted buffer in place (no copy); plain python3 reads the file
    return compute(mesatee.input_buffer("data"))


if __name__ == "__main__":
    # compute-only: from after the imports (the file's read included, as the
    # task's decryption is), to stderr; the result to stdout
    import sys, time
    t0, c0 = time.perf_counter(), time.process_time()
    with open(sys.argv[1], "rb") as f:
        r = compute(f.read())
    print("compute_ms %d cpu_ms %d" % ((time.perf_counter() - t0) * 1000,
                                      (time.process_time() - c0) * 1000), file=sys.stderr)
    print(r)
