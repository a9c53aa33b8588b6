# statsmodels, XGBoost, SciPy and scikit-learn in one task: party a holds
# training rows "x1,x2,y", party b holds rows to score. Returns the OLS
# coefficients (statsmodels), the XGBoost and scikit-learn training R^2 and
# a SciPy optimum; writes the XGBoost predictions for b's rows to "scores".
import numpy as np
import scipy.optimize
import sklearn.linear_model
import statsmodels.api as sm
import xgboost
import mesatee


def entrypoint(argv):
    a = np.loadtxt(mesatee.open_input("a"), delimiter=",", ndmin=2)
    b = np.loadtxt(mesatee.open_input("b"), delimiter=",", ndmin=2)
    X, y = a[:, :-1], a[:, -1]
    ols = sm.OLS(y, sm.add_constant(X)).fit()
    booster = xgboost.XGBRegressor(n_estimators=20, max_depth=2, n_jobs=1, random_state=0)
    booster.fit(X, y)
    lin = sklearn.linear_model.LinearRegression().fit(X, y)
    opt = scipy.optimize.minimize_scalar(lambda t: (t - 3.0) ** 2)
    with mesatee.create_output("scores") as w:
        for p in booster.predict(b):
            w.write("%.4f\n" % p)
    return "ols=%s xgb_r2=%.2f sk_r2=%.2f opt=%.3f" % (
        " ".join("%.2f" % c for c in ols.params), booster.score(X, y), lin.score(X, y), opt.x)
