#!/usr/bin/python3
"""bench/nn "as a platform task": ResNet-50, MobileNetV2 and SqueezeNet (torchvision,
random weights, the export of tests/nn/torch_models.py) at batch 1 and 8, 1 and 2
threads, four columns measured in the same run, interleaved round by round
(ours in process, the task, torch, torch-opt, ours, the task, ...), every run printed:

  ours     our engine in process (tests/nn/nn_torch_run -s: loaded and prepared once,
           mt_nn_run timed), median of the K runs of each round
  task     the same model as an onnx_infer task on a real `mesatee serve` driven by the
           CLI: a vendor's encrypted model, a hospital's encrypted .npy, the output
           encrypted for the hospital. Cold: every task is a new worker that decrypts the
           model and the input, parses and prepares the model (oneDNN primitives and weight
           reorders made on first use), runs it once and encrypts the output. Reported:
           server = invoke -> finished on the server (the access-log time of the invoke
           request to the "task .. finished" line), worker = the worker's wall
           (metering.wall_ms), client = `task invoke` + `task wait` seen by the CLI
  torch    eager module (eval, no_grad); torch-opt = optimize_for_inference(freeze(trace))

Both sides OMP_WAIT_POLICY=passive; threads = T on every side. Figures: medians.

usage: bench_task.py BUILD_DIR [ROUNDS [K]]   (default 3 rounds, K = 3)
       MT_NN_BENCH_MODELS="squeezenet1_1 ..." picks models; MT_NN_BENCH_BATCHES="1 8"."""
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

os.environ["OMP_WAIT_POLICY"] = "passive"  # before torch loads its OpenMP runtime

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "nn"))
import torch_models  # noqa: E402

TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z")


class Server:
    def __init__(self, binary, work):
        self.bin, self.work = binary, work
        self.data = os.path.join(work, "server")
        os.makedirs(self.data)
        self.env = dict(os.environ, MESATEE_CONFIG=os.path.join(work, "no-config"))
        for k in ("MESATEE_SERVER", "MESATEE_CA", "MESATEE_TOKEN_FILE", "MESATEE_OUTPUT"):
            self.env.pop(k, None)
        pw = os.path.join(work, "admin.pw")
        with open(pw, "w") as f:
            f.write(os.urandom(12).hex())
        self.log = os.path.join(work, "server.log")
        self.proc = subprocess.Popen(
            [binary, "serve", "--data-dir", self.data, "--listen", "127.0.0.1:0",
             "--admin-password-file", pw, "--task-mem-mb", "6144"],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=self.env)
        url = os.path.join(self.data, "server.url")
        for _ in range(1200):
            if os.path.exists(url) and os.path.getsize(url):
                break
            if self.proc.poll() is not None:
                raise RuntimeError("server exited at start")
            time.sleep(0.05)
        self.env["MESATEE_SERVER"] = open(url).read().strip()
        self.env["MESATEE_CA"] = os.path.join(self.data, "tls", "server-cert.pem")
        self.cli("admin", "login", "--user", "admin", "--password-file", pw)
        for u in ("vendor", "hospital"):
            upw = os.path.join(work, u + ".pw")
            with open(upw, "w") as f:
                f.write(os.urandom(12).hex())
            self.cli("admin", "user", "add", u, "--password-file", upw)
            self.cli(u, "login", "--user", u, "--password-file", upw)

    def cli(self, user, *args):
        env = dict(self.env, MESATEE_TOKEN_FILE=os.path.join(self.work, user + ".token"))
        r = subprocess.run([self.bin, *args], env=env, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"mesatee {' '.join(args[:3])}: {r.stderr.strip()}")
        return r.stdout.strip()

    def enc(self, user, path):
        k = os.path.join(self.work, os.path.basename(path))
        self.cli(user, "file", "encrypt", "--in", path, "--out", k + ".enc", "--key-out",
                 k + ".key")
        url = self.cli(user, "file", "upload", k + ".enc")
        return self.cli(user, "file", "register", url, "--key", k + ".key")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def log_ms(line):
    m = TS.match(line)
    return datetime.datetime.fromisoformat(m.group(1)).timestamp() * 1e3 if m else None


def run_task(srv, fn, mid, iid, n):
    okey = os.path.join(srv.work, f"out{n}.key")
    subprocess.run([srv.bin, "key", "generate", "--out", okey], env=srv.env, check=True,
                   capture_output=True)
    o = srv.cli("hospital", "file", "register-output", "--key", okey)
    t = srv.cli("vendor", "task", "create", "--function", fn, "--input", "model=vendor",
                "--input", "input=hospital", "--output", "output=hospital")
    srv.cli("vendor", "task", "assign", t, "--input", "model=" + mid)
    srv.cli("hospital", "task", "assign", t, "--input", "input=" + iid, "--output",
            "output=" + o)
    srv.cli("vendor", "task", "approve", t)
    srv.cli("hospital", "task", "approve", t)
    s = time.perf_counter()
    srv.cli("vendor", "task", "invoke", t)
    srv.cli("vendor", "task", "wait", t, "--timeout", "600")
    client = (time.perf_counter() - s) * 1e3
    rec = json.loads(srv.cli("hospital", "--output", "json", "task", "show", t))
    if rec["status"] != "finished":
        raise RuntimeError(f"task {rec['status']}: {rec.get('failure_reason')}")
    inv = fin = None
    with open(srv.log) as f:
        for line in f:
            if "route=\"POST /v1/tasks/{id}/invoke\"" in line:
                inv = log_ms(line)
            elif f"task {t} finished" in line:
                fin = log_ms(line)
    m = re.search(r"load\+inputs ([0-9.]+) ms, prepare ([0-9.]+) ms, run ([0-9.]+) ms",
                  rec.get("log") or "")
    split = f" (load {m.group(1)} prepare {m.group(2)} first run {m.group(3)})" if m else ""
    return fin - inv, float(rec["metering"]["wall_ms"]), client, split


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    build = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    runner = os.path.join(build, "tests", "nn_torch_run")
    binary = os.path.join(build, "src", "cli", "mesatee")
    import numpy as np
    import torch
    models = os.environ.get("MT_NN_BENCH_MODELS",
                            "resnet50 mobilenet_v2 squeezenet1_1").split()
    batches = [int(b) for b in os.environ.get("MT_NN_BENCH_BATCHES", "1 8").split()]
    rows = []
    ntask = 0
    with tempfile.TemporaryDirectory(prefix="mt-nn-task-bench-") as d:
        srv = Server(binary, os.path.join(d, "srv"))
        try:
            for name in models:
                for batch in batches:
                    p = os.path.join(d, f"{name}-b{batch}")
                    model, x = torch_models.export(name, p, batch=batch, with_model=True)
                    np.save(p + ".npy", x.numpy().astype("<f4"))
                    mid = srv.enc("vendor", p + ".onnx")
                    iid = srv.enc("hospital", p + ".npy")
                    with torch.no_grad():
                        opt = torch.jit.optimize_for_inference(
                            torch.jit.freeze(torch.jit.trace(model, x)))
                    for threads in (1, 2):
                        torch.set_num_threads(threads)
                        fn = srv.cli("vendor", "function", "register", "--name",
                                     f"{name}-b{batch}-t{threads}", "--builtin", "onnx_infer",
                                     "--public", "--input-slot", "model", "--input-slot",
                                     "input", "--output-slot", "output", "--arg",
                                     f"threads={threads}")
                        ip = subprocess.Popen(
                            [runner, "-s", "-t", str(threads), p + ".onnx", p + ".in.f32"] +
                            [str(s) for s in x.shape],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                        ready = ip.stdout.readline().strip()
                        if not ready.startswith("ready"):
                            print(f"{name} b{batch} t{threads}: runner failed", flush=True)
                            return 1
                        print(f"{name} batch {batch} threads {threads}: ours {ready}",
                              flush=True)

                        def ours(n):
                            ip.stdin.write(f"{n}\n")
                            ip.stdin.flush()
                            return [float(v) for v in ip.stdout.readline().split()]

                        def timed(f, n):
                            out = []
                            with torch.no_grad():
                                for _ in range(n):
                                    s = time.perf_counter()
                                    f(x)
                                    out.append((time.perf_counter() - s) * 1e3)
                            return out

                        first = ours(1)
                        print(f"  ours first run (oneDNN primitives made) {first[0]:.1f} ms",
                              flush=True)
                        timed(model, 1)
                        timed(opt, 2)
                        ot, sv, wk, cl, tt, pt = [], [], [], [], [], []
                        for r in range(rounds):
                            a = ours(k)
                            ntask += 1
                            s_, w_, c_, split = run_task(srv, fn, mid, iid, ntask)
                            b = timed(model, k)
                            c = timed(opt, k)
                            ot += a
                            sv.append(s_)
                            wk.append(w_)
                            cl.append(c_)
                            tt += b
                            pt += c
                            print(f"  round {r}: ours " + " ".join(f"{v:.1f}" for v in a) +
                                  f" ms | task server {s_:.0f} worker {w_:.0f}{split} client "
                                  f"{c_:.0f} ms | torch " +
                                  " ".join(f"{v:.1f}" for v in b) + " ms | torch-opt " +
                                  " ".join(f"{v:.1f}" for v in c) + " ms", flush=True)
                        ip.stdin.close()
                        ip.wait()
                        rows.append((name, batch, threads, statistics.median(ot),
                                     statistics.median(sv), statistics.median(wk),
                                     statistics.median(cl), statistics.median(tt),
                                     statistics.median(pt)))
        finally:
            srv.stop()
    print()
    print("| model | batch | threads | ours ms | task server ms | task worker ms | task client "
          "ms | torch ms | torch-opt ms | task server / ours | ours / torch-opt |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, batch, threads, om, sm, wm, cm, tm, pm in rows:
        print(f"| {name} | {batch} | {threads} | {om:.1f} | {sm:.0f} | {wm:.0f} | {cm:.0f} | "
              f"{tm:.1f} | {pm:.1f} | {sm / om:.2f}x | {om / pm:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
