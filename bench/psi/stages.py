#!/usr/bin/python3
"""Stage lines of bench_psi_task runs traced with MESATEE_TRACE_TASKS=1
(bench/psi/stages.sh). Usage: stages.py LABEL ROUND LOAD < bench output,
one line per task; stages.py --summary < those lines: medians per label,
all runs and runs 2.. (a zygote warmed up). Stages (ms):
  pre      executor entry -> worker entry (files, job, zygote fork, sandbox)
  job      job read and decoded, output encryptors set up
  inputs   inputs read, SHA-256 checked, decrypted (two threads)
  psi+out  the built-in: PSI, formatting, encrypting and writing the outputs
  fin      outputs finished, result written
  exit     worker exit (its memory wiped and freed) until the zygote reaped it
  hash     result parsed, outputs' SHA-256 (concurrent with their fsync and
           with the early flushing's last flush)
  flushw   the rest of the early flushing's last flush (the executor's helper)
  sync     the rest of the outputs' fsync
  seal     exit reaped -> outputs renamed, directory fsynced (flushw..rename)"""
import re
import statistics
import sys

PARTS = [("pre", "x_start", "w_start"), ("job", "w_start", "w_outputs_ready"),
         ("inputs", "w_outputs_ready", "w_inputs"), ("psi+out", "w_inputs", "w_ran"),
         ("fin", "w_ran", "w_report"), ("exit", "w_report", "x_reaped"),
         ("hash", "x_reaped", "x_hashed"), ("flushw", "x_hashed", "x_flushed"),
         ("sync", "x_flushed", "x_synced"), ("seal", "x_reaped", "x_committed")]
ROW = re.compile(r"^\| (\d+) \| ours \(A\) \| ([\d.]+) \| (\d+) \(worker wall (\d+)\)")
LINE = re.compile(r"trace task \S+ ([a-z_]+) (\d+)")


def tasks(label, rnd, load):
    st = {}
    for line in sys.stdin:
        m = LINE.search(line)
        if m:
            st[m.group(1)] = int(m.group(2))
            continue
        m = ROW.match(line)
        if not m:
            continue
        if "x_flushed" not in st and "x_hashed" in st:
            st["x_flushed"] = st["x_hashed"]  # no early flushing: nothing waited for
        cells = ["%s %s" % (n, "%.1f" % ((st[b] - st[a]) / 1000) if a in st and b in st else "-")
                 for n, a, b in PARTS]
        print("%s round %s run %s load %s | wall %s | worker wall %s cpu %s | %s" %
              (label, rnd, m.group(1), load, m.group(2), m.group(4), m.group(3), " ".join(cells)))
        st = {}


def summary():
    rows = {}
    for line in sys.stdin:
        m = re.match(r"(\S+) round \d+ run (\d+) load \S+ \| wall (\S+) "
                     r"\| worker wall (\d+) cpu (\d+) \| (.*)", line)
        if not m:
            continue
        f = m.group(6).split()
        d = {k: float(v) for k, v in zip(f[0::2], f[1::2]) if v != "-"}
        d.update(wall=float(m.group(3)), wwall=float(m.group(4)), cpu=float(m.group(5)))
        rows.setdefault(m.group(1), []).append((int(m.group(2)), d))
    keys = ["wall", "wwall", "cpu"] + [n for n, _, _ in PARTS]
    print("medians (ms): " + " ".join(keys))
    for label in sorted(rows):
        for what, sel in (("all runs", lambda r: True), ("runs 2..", lambda r: r >= 2)):
            ds = [d for r, d in rows[label] if sel(r)]
            if not ds:
                continue
            med = [("%.1f" % statistics.median([d[k] for d in ds if k in d]))
                   if any(k in d for d in ds) else "-" for k in keys]
            print("%s %s (%d): %s" % (label, what, len(ds), " ".join(med)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--summary"]:
        summary()
    else:
        tasks(*sys.argv[1:4])
