#!/usr/bin/python3
"""bench/nn: ResNet-50, MobileNetV2 and SqueezeNet (torchvision, random weights, the same
export as tests/nn/torch_models.py) at batch 1 and 8, 1 and 2 threads: our engine in
process (tests/nn/nn_torch_run -s: model loaded and prepared once, mt_nn_run timed) vs
torch (eager, eval, no_grad; its convolutions go through oneDNN) in the same run,
interleaved round by round (ours K runs, torch K runs, ours, torch, ...), every run
printed. Both sides: OMP_WAIT_POLICY=passive; torch.set_num_threads(T) and the engine's
threads = T. Two torch columns: "torch" = the eager module; "torch-opt" =
torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model))) (BatchNorm
folded, weights prepacked in oneDNN layouts: the stronger anchor).
Figure: median of all timed runs (after warm-up runs on each side).

usage: bench_torch.py RUNNER [ROUNDS [K]]   (default 3 rounds of 3 runs)
       MT_NN_BENCH_MODELS="squeezenet1_1 ..." picks models; MT_NN_BENCH_BATCHES="1 8"."""
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ["OMP_WAIT_POLICY"] = "passive"  # before torch loads its OpenMP runtime

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "nn"))
import torch_models  # noqa: E402


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    runner = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    import torch
    models = os.environ.get("MT_NN_BENCH_MODELS",
                            "resnet50 mobilenet_v2 squeezenet1_1").split()
    batches = [int(b) for b in os.environ.get("MT_NN_BENCH_BATCHES", "1 8").split()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mt-nn-bench-") as d:
        for name in models:
            for batch in batches:
                p = os.path.join(d, f"{name}-b{batch}")
                model, x = torch_models.export(name, p, batch=batch, with_model=True)
                with torch.no_grad():
                    opt = torch.jit.optimize_for_inference(
                        torch.jit.freeze(torch.jit.trace(model, x)))
                for threads in (1, 2):
                    torch.set_num_threads(threads)
                    srv = subprocess.Popen(
                        [runner, "-s", "-t", str(threads), p + ".onnx", p + ".in.f32"] +
                        [str(s) for s in x.shape],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                    ready = srv.stdout.readline().strip()
                    if not ready.startswith("ready"):
                        print(f"{name} b{batch} t{threads}: runner failed", flush=True)
                        return 1
                    print(f"{name} batch {batch} threads {threads}: ours {ready}", flush=True)

                    def ours(n):
                        srv.stdin.write(f"{n}\n")
                        srv.stdin.flush()
                        return [float(v) for v in srv.stdout.readline().split()]

                    def timed(fn, n):
                        out = []
                        with torch.no_grad():
                            for _ in range(n):
                                s = time.perf_counter()
                                fn(x)
                                out.append((time.perf_counter() - s) * 1e3)
                        return out

                    ours(1)
                    timed(model, 1)
                    timed(opt, 2)  # the frozen module specialises on its first runs
                    ot, tt, pt = [], [], []
                    for r in range(rounds):
                        a = ours(k)
                        b = timed(model, k)
                        c = timed(opt, k)
                        ot += a
                        tt += b
                        pt += c
                        print(f"  round {r}: ours " + " ".join(f"{v:.1f}" for v in a) +
                              " ms | torch " + " ".join(f"{v:.1f}" for v in b) +
                              " ms | torch-opt " + " ".join(f"{v:.1f}" for v in c) + " ms",
                              flush=True)
                    srv.stdin.close()
                    srv.wait()
                    rows.append((name, batch, threads, statistics.median(ot),
                                 statistics.median(tt), statistics.median(pt)))
    print()
    print("| model | batch | threads | ours ms | torch ms | torch-opt ms | ours/torch "
          "| ours/torch-opt |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, batch, threads, om, tm, pm in rows:
        print(f"| {name} | {batch} | {threads} | {om:.1f} | {tm:.1f} | {pm:.1f} | "
              f"{om / tm:.2f}x | {om / pm:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
