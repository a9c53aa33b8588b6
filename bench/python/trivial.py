# bench/python: the per-task overhead probe: imports numpy and pandas (warm in
# the zygote, imported per task in a cold interpreter) and returns at once.
import numpy
import pandas


def entrypoint(argv):
    return "ok"
