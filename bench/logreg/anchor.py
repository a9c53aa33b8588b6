# Anchor of bench/logreg/run.sh: sklearn LogisticRegression(lbfgs, C=1) on the
# same CSV, fit timed alone, and the AUC of our model JSON (mesatee's
# logistic_regression_train output) on the same test rows. run.sh runs it
# with one BLAS/OpenMP thread (ours fits on one core) and the worker's
# OMP_WAIT_POLICY; the CSV load (np.loadtxt) is timed apart from the fit.
# Usage: python3 anchor.py TRAIN.csv TEST.csv MODEL.json
import json, sys, time
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

tl = time.perf_counter()
tr = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
print("anchor_load_s %.3f" % (time.perf_counter() - tl))
te = np.loadtxt(sys.argv[2], delimiter=",", skiprows=1)
x, y, tx, ty = tr[:, :-1], tr[:, -1], te[:, :-1], te[:, -1]
t0 = time.perf_counter()
m = LogisticRegression(solver="lbfgs", C=1.0, max_iter=1000).fit(x, y)
t1 = time.perf_counter()
print("anchor_fit_s %.3f" % (t1 - t0))
print("anchor_iterations %d" % m.n_iter_[0])
print("anchor_auc %.6f" % roc_auc_score(ty, m.decision_function(tx)))
with open(sys.argv[3]) as f:
    md = json.load(f)
names = open(sys.argv[2]).readline().strip().split(",")[:-1]
w = np.array([md["coefficients"][md["features"].index(n)] for n in names])
print("our_auc %.6f" % roc_auc_score(ty, tx @ w + md["intercept"]))
