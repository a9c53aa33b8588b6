# The function of examples/python/two_party_regression.py: linear regression
# by numpy least squares over two parties' rows ("a": organisation A's,
# "b": organisation B's; CSV rows x1,...,xk,y). Each party gets its own
# output: the common coefficients and the fit on ITS rows only (rows, R^2,
# RMSE), so neither learns the other's data or how well the model fits it.
# The task's public result is just the number of rows per side.
import numpy as np
import mesatee


def load(slot):
    return np.loadtxt(mesatee.open_input(slot), delimiter=",", ndmin=2)


def report(w, coef, rows):
    X = np.column_stack([np.ones(len(rows)), rows[:, :-1]])
    y = rows[:, -1]
    resid = y - X @ coef
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    w.write("coefficients=%s\n" % " ".join("%.6f" % c for c in coef))
    w.write("rows=%d r2=%.6f rmse=%.6f\n" % (len(rows), r2, float(np.sqrt((resid ** 2).mean()))))


def entrypoint(argv):
    a, b = load("a"), load("b")
    if a.shape[1] != b.shape[1] or a.shape[1] < 2:
        raise ValueError("both parties need the same columns x1,...,xk,y")
    data = np.vstack([a, b])
    X = np.column_stack([np.ones(len(data)), data[:, :-1]])
    coef, *_ = np.linalg.lstsq(X, data[:, -1], rcond=None)
    for slot, rows in (("ra", a), ("rb", b)):
        with mesatee.create_output(slot) as w:
            report(w, coef, rows)
    mesatee.log("fitted %d + %d rows, %d features" % (len(a), len(b), data.shape[1] - 1))
    return "rows a=%d b=%d" % (len(a), len(b))
