#!/usr/bin/python3
"""Per-stage breakdown of traced tasks (MESATEE_TRACE_TASKS=1, src/common/mt_trace.h).

Usage: trace_breakdown.py SERVER_LOG [--check TASK_ID]
Reads the daemon's "trace task ID STAGE MONO_US" lines; for every task that
has both ends (gw_recv .. event_raised) prints, per stage, the median and the
range over tasks of the time since the previous stage present, in the path's
order, then every task's total (gw_recv -> event_raised), in invoke order. --check ID: exits 1 unless task ID has every stage of a zygote-forked
built-in task, in this order (used by tests/integration/it_task_trace.sh; no
timing is judged)."""
import re
import statistics
import sys

# (stage, what the interval ending at it covers)
ORDER = [
    ("gw_recv", "invoke request parsed by the gateway (TLS, HTTP head)"),
    ("api_enter", "gateway: token check, dispatch to the core"),
    ("api_locked", "waiting for the core's store lock"),
    ("api_handled", "invoke handler: task read, integrity verify, UPDATEs, audit append"),
    ("api_committed", "store COMMIT (fsync)"),
    ("api_woke", "lock released, scheduler woken unless the claim rode on the invoke (concurrent with the scheduler)"),
    ("gw_reply", "invoke answered (since api_woke; concurrent with the scheduler)"),
    ("sched_run", "scheduler thread takes the task (since api_committed: the claim rode on the invoke's commit, or its own claim transaction + fsync)"),
    ("job_built", "job built: integrity verify, key unwrap, KeyStore audit"),
    ("x_start", "executor entry checks"),
    ("w_zyg_recv", "executor: files, job encoded, request sent; zygote receives it"),
    ("w_child", "zygote hands the request to its spare child, or forks one (to the child's first step with it)"),
    ("w_fds", "child: fds placed, others closed, hash seed"),
    ("w_limits", "child: rlimits, no-new-privs, not dumpable"),
    ("w_seccomp", "child: seccomp filter built and loaded"),
    ("x_forked", "daemon reads the zygote's 'started' report (since w_zyg_recv; concurrent)"),
    ("w_start", "worker entry (child returned from the zygote loop)"),
    ("w_job_read", "job read from the channel"),
    ("w_job_decoded", "job decoded"),
    ("w_crypto", "OpenSSL warm-up (probe encrypt/decrypt)"),
    ("w_outputs_ready", "output encryptors set up"),
    ("w_inputs", "inputs (and a wasm/python module) read and decrypted"),
    ("w_ran", "the built-in (or the module: decode, instantiate, run) ran"),
    ("w_outputs_done", "outputs finished (final encrypt)"),
    ("w_report", "result JSON being written"),
    ("x_result", "daemon read the result (channel EOF: the worker closed it after its result)"),
    ("x_reaped", "zygote reported the usage (no outputs: the worker waits to be killed) or the exit (reap, rusage)"),
    ("x_hashed", "result parsed, outputs hashed (SHA-256; concurrent with their fsync)"),
    ("x_flushed", "early output flushing's last flush waited for (only when it ran: tasks of 10 ms and more)"),
    ("x_synced", "outputs fsynced (the rest of the fsync)"),
    ("x_committed", "outputs renamed, their directory fsynced"),
    ("exec_done", "executor returned"),
    ("outcome_committed", "outcome transaction (+ next claim) committed (fsync)"),
    ("event_raised", "task event raised (wakes long polls)"),
]
ALWAYS = [s for s, _ in ORDER if s not in ("w_inputs", "x_job_sent", "x_flushed")]

LINE = re.compile(r"trace task ([0-9a-f]{32}) ([a-z_]+) (\d+)")


def load(path):
    tasks = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.search(line)
            if m:
                tasks.setdefault(m.group(1), {})[m.group(2)] = int(m.group(3))
    return tasks


def main():
    tasks = load(sys.argv[1])
    if len(sys.argv) == 4 and sys.argv[2] == "--check":
        t = tasks.get(sys.argv[3], {})
        missing = [s for s in ALWAYS if s not in t]
        if missing:
            print("missing stages: " + " ".join(missing))
            return 1
        # concurrent with the next stages: the invoke's reply (with the
        # scheduler) and the daemon reading "started" (with the child)
        seq = [s for s in ALWAYS if s not in ("api_woke", "gw_reply", "x_forked")]
        if t["api_woke"] < t["api_committed"]:
            print(f"out of order: api_committed {t['api_committed']} > api_woke {t['api_woke']}")
            return 1
        for a, b in zip(seq, seq[1:]):
            if t[b] < t[a]:
                print(f"out of order: {a} {t[a]} > {b} {t[b]}")
                return 1
        print(f"ok: {len(t)} stages, in order")
        return 0
    full = {k: v for k, v in tasks.items() if "gw_recv" in v and "event_raised" in v}
    if not full:
        print("no complete traced task in", sys.argv[1])
        return 1
    print(f"{len(full)} traced tasks; per stage: median [min-max] us since the previous stage")
    print("| stage | what the interval covers | median us | min-max us |")
    print("|---|---|---|---|")
    for i, (stage, what) in enumerate(ORDER):
        if i == 0:
            continue
        d = []
        for t in full.values():
            if stage not in t:
                continue
            prev = [t[s] for s, _ in ORDER[:i]
                    if s in t and s not in ("api_woke", "gw_reply", "x_forked")]
            if stage == "api_woke":
                prev = [t["api_committed"]] if "api_committed" in t else prev
            if stage == "gw_reply":
                prev = [t["api_woke"]] if "api_woke" in t else prev
            if stage == "x_forked":
                prev = [t["w_zyg_recv"]] if "w_zyg_recv" in t else prev
            if prev:
                d.append(t[stage] - prev[-1])
        if d:
            print(f"| {stage} | {what} | {statistics.median(d):.0f} | {min(d)}-{max(d)} |")
    tot = [t["event_raised"] - t["gw_recv"] for t in full.values()]
    print(f"| total | gw_recv -> event_raised | {statistics.median(tot):.0f} | {min(tot)}-{max(tot)} |")
    order = sorted(full.values(), key=lambda t: t["gw_recv"])
    print("every task's total (gw_recv -> event_raised, us), in invoke order: " +
          " ".join(str(t["event_raised"] - t["gw_recv"]) for t in order))
    return 0


if __name__ == "__main__":
    sys.exit(main())
