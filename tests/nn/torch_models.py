#!/usr/bin/python3
"""Real models (issue 12): exports torchvision models with random weights (fixed seed,
eval mode) through torch.onnx.export (opset 13) into a temporary directory, with a fixed
random input and torch's output as raw float32, and checks that the engine
(tests/nn/nn_torch_run) gives the same output: max|ours - torch| / max|torch| <= 1e-4.

Each model runs with 1 and 2 engine threads, and with the graph passes off (-n).
usage: torch_models.py RUNNER [MODEL ...]   (default: the models named by MT_NN_TORCH_MODELS,
       else squeezenet1_1 mobilenet_v2 resnet50: about 9 s together, 10 s under ASan)
Exits 77 (ctest skip) when torch/torchvision are not importable."""
import os
import subprocess
import sys
import tempfile
import time

TOL = 1e-4


def export(name, path, batch=1, seed=0, with_model=False):
    import torch
    import torchvision
    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)(weights=None)
    # Random weights alone make MobileNetV2's logits vanish (~1e-9), which would make
    # the comparison meaningless: calibrate the BatchNorm statistics on one random batch
    # (cumulative average, train mode, no gradients) so activations stay O(1).
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    if bns:
        with torch.no_grad():
            model.train()
            model(torch.randn(8, 3, 224, 224))
    model.eval()
    torch.manual_seed(seed + 1)
    x = torch.randn(batch, 3, 224, 224)
    with torch.no_grad():
        y = model(x)
        torch.onnx.export(model, x, path + ".onnx", opset_version=13,
                          input_names=["input"], output_names=["output"])
    x.numpy().astype("float32").tofile(path + ".in.f32")
    y.numpy().astype("float32").tofile(path + ".ref.f32")
    return (model, x) if with_model else x.shape


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        print(f"SKIP: torch/torchvision not importable ({e}); scripts/install-deps "
              "installs python3-torch python3-torchvision")
        return 77
    runner = sys.argv[1]
    names = sys.argv[2:]
    if not names:
        names = os.environ.get("MT_NN_TORCH_MODELS",
                               "squeezenet1_1 mobilenet_v2 resnet50").split()
    fails = 0
    with tempfile.TemporaryDirectory(prefix="mt-nn-torch-") as d:
        for name in names:
            t0 = time.monotonic()
            p = os.path.join(d, name)
            shape = export(name, p)
            t_exp = time.monotonic() - t0
            print(f"{name}: exported in {t_exp:.1f} s", flush=True)
            bad = 0
            for threads, flags in ((1, []), (2, []), (1, ["-n"])):
                cmd = [runner, "-t", str(threads)] + flags + [p + ".onnx", p + ".in.f32"] + \
                      [str(s) for s in shape] + [p + ".ref.f32", str(TOL)]
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
                print(f"  {r.stdout.strip()}", flush=True)
                if r.returncode != 0:
                    print(f"FAIL {name} (threads {threads}): runner exit {r.returncode}")
                    bad = 1
            if not bad and name == names[0]:
                # the comparison must be able to fail: a reference off by 1e-3 of its
                # largest magnitude in one element is refused
                import numpy
                ref = numpy.fromfile(p + ".ref.f32", dtype=numpy.float32)
                ref[len(ref) // 2] += 1e-3 * float(numpy.abs(ref).max())
                ref.tofile(p + ".bad.f32")
                cmd = [runner, p + ".onnx", p + ".in.f32"] + [str(s) for s in shape] + \
                      [p + ".bad.f32", str(TOL)]
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
                print(f"  perturbed reference: exit {r.returncode} (1 expected)", flush=True)
                if r.returncode != 1:
                    bad = 1
            fails += bad
    print(f"{len(names) - fails}/{len(names)} models match torch within {TOL:g} relative")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
