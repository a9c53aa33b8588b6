# bench/common.sh: sourced by every bench/<name>/run.sh. Prints the header
# the project's bench rule asks for (what ran, when, on which commit, how
# loaded the machine was) and small helpers shared by the scripts.
# The rule (issue 13 "Honest benchmarks"): our figure beside its named
# anchor, measured in the same run, interleaved (ours, anchor, ours, anchor),
# every run printed (not only the best), the load printed before and after;
# ours measured as a user gets it (a cold task in a fresh worker, decrypt and
# encrypt included) and the anchor under the same settings as ours.
# BENCH_QUICK=1 asks every script for its small sizes (a few minutes on a
# shared 2-core machine); each script says what its quick mode changes.

bench_load() { cut -d' ' -f1-3 /proc/loadavg; }

# bench_header NAME: date, commit, machine, load average.
bench_header() {
    local root commit
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        commit="$commit+local changes"
    fi
    echo "== bench $1: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, $(nproc) CPUs," \
         "load average $(bench_load)${BENCH_QUICK:+, quick=$BENCH_QUICK}"
}

# bench_footer NAME: the load at the end (a run is only as quiet as its worst minute).
bench_footer() { echo "== bench $1 done: $(date -u '+%H:%M UTC'), load average $(bench_load)"; }

# The OpenMP setting the worker runs with (src/executor: the worker's
# environment is empty except OMP_WAIT_POLICY=PASSIVE); anchors get the same.
export OMP_WAIT_POLICY=PASSIVE
