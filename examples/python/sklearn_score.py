# A scikit-learn model trained on one party's labelled data ("train": x1,x2,label)
# and scored on another party's ("test": same columns); only the accuracy
# leaves the task.
import numpy as np
import mesatee
from sklearn.linear_model import LogisticRegression


def load(slot):
    return np.loadtxt(mesatee.open_input(slot), delimiter=",", ndmin=2)


def entrypoint(argv):
    train, test = load("train"), load("test")
    model = LogisticRegression().fit(train[:, :-1], train[:, -1])
    return "accuracy=%.2f" % model.score(test[:, :-1], test[:, -1])
