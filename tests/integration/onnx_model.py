#!/usr/bin/python3
"""Writes a tiny ONNX model (protobuf encoded by hand: no onnx or torch module needed),
its weights' independent numpy result, and inputs, for it_onnx_infer.sh and
examples/onnx_infer.sh.

  onnx_model.py DIR   writes DIR/model.onnx  X[N,4] -> Gemm(W1,b1) -> Relu -> MatMul(W2)
                                             -> Add(b2) -> Softmax(axis=-1) -> Y[N,3]
                             DIR/badop.onnx  a node of op type Einsum named 'secret_layer_7'
                             DIR/input.npy   float32 [5,4]; DIR/input.csv the same rows
                             DIR/input_f64.npy the same as float64
                             DIR/expected.npy numpy's float64 result on input.npy
                             DIR/model_ext.bin (+ .size, .onnx) the MLP, weights external
                             DIR/two.onnx A,B -> sum, prod; DIR/a.npy b.npy sum.npy prod.npy
  onnx_model.py check GOT.npy WANT.npy   exits 1 unless they agree within 1e-5
"""
import struct
import sys

import numpy as np


def varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def f_int(field, v):
    return key(field, 0) + varint(v)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return key(field, 2) + varint(len(b)) + b


def f_float(field, v):
    return key(field, 5) + struct.pack("<f", v)


def tensor(name, arr):
    arr = np.ascontiguousarray(arr, dtype="<f4")
    t = b"".join(f_int(1, d) for d in arr.shape)
    return t + f_int(2, 1) + f_bytes(8, name) + f_bytes(9, arr.tobytes())


def vinfo(name, dims):
    shape = b""
    for d in dims:
        shape += f_bytes(1, f_bytes(2, d) if isinstance(d, str) else f_int(1, d))
    ttype = f_int(1, 1) + f_bytes(2, shape)
    return f_bytes(1, name) + f_bytes(2, f_bytes(1, ttype))


def node(name, op, ins, outs, attrs=b""):
    return (b"".join(f_bytes(1, i) for i in ins) + b"".join(f_bytes(2, o) for o in outs)
            + f_bytes(3, name) + f_bytes(4, op) + attrs)


def attr_i(name, v):
    return f_bytes(5, f_bytes(1, name) + f_int(3, v) + f_int(20, 2))


def model(nodes, inits, ins, outs):
    g = b"".join(f_bytes(1, n) for n in nodes) + f_bytes(2, "g")
    g += b"".join(f_bytes(5, t) for t in inits)
    g += b"".join(f_bytes(11, v) for v in ins) + b"".join(f_bytes(12, v) for v in outs)
    return f_int(1, 8) + f_bytes(8, f_bytes(1, "") + f_int(2, 13)) + f_bytes(7, g)


def ext_tensor(name, arr, blob):
    """A float32 initializer whose bytes live in blob (data_location EXTERNAL)."""
    arr = np.ascontiguousarray(arr, dtype="<f4")
    off = len(blob)
    blob += arr.tobytes()
    t = b"".join(f_int(1, d) for d in arr.shape)
    t += f_int(2, 1) + f_bytes(8, name)
    for k, v in (("location", "weights.bin"), ("offset", str(off)), ("length", str(arr.nbytes))):
        t += f_bytes(13, f_bytes(1, k) + f_bytes(2, v))
    return t + f_int(14, 1)


def weights():
    rng = np.random.default_rng(7)
    return (rng.normal(size=(4, 5)).astype("<f4"), rng.normal(size=5).astype("<f4"),
            rng.normal(size=(5, 3)).astype("<f4"), rng.normal(size=3).astype("<f4"))


def main(d):
    w1, b1, w2, b2 = weights()
    nodes = [node("dense_1", "Gemm", ["X", "W1", "B1"], ["h"]),
             node("act_1", "Relu", ["h"], ["r"]),
             node("dense_2", "MatMul", ["r", "W2"], ["m"]),
             node("bias_2", "Add", ["m", "B2"], ["z"]),
             node("probs", "Softmax", ["z"], ["Y"], attr_i("axis", -1))]
    inits = [tensor("W1", w1), tensor("B1", b1), tensor("W2", w2), tensor("B2", b2)]
    with open(d + "/model.onnx", "wb") as f:
        f.write(model(nodes, inits, [vinfo("X", ["N", 4])], [vinfo("Y", ["N", 3])]))
    # the same MLP with W1 and W2 as external data: DIR/model_ext.bin is the ModelProto
    # followed by the blob, DIR/model_ext.size the ModelProto's length (model_size)
    blob = bytearray()
    ext = [tensor("B1", b1), ext_tensor("W1", w1, blob), ext_tensor("W2", w2, blob),
           tensor("B2", b2)]
    mp = model(nodes, ext, [vinfo("X", ["N", 4])], [vinfo("Y", ["N", 3])])
    with open(d + "/model_ext.bin", "wb") as f:
        f.write(mp + bytes(blob))
    with open(d + "/model_ext.onnx", "wb") as f:
        f.write(mp)
    with open(d + "/model_ext.size", "w") as f:
        f.write(str(len(mp)))
    # two inputs, two outputs: sum = A + B, prod = A * B (A [N,4], B [N,4])
    two = [node("adder", "Add", ["A", "B"], ["sum"]), node("multiplier", "Mul", ["A", "B"], ["prod"])]
    with open(d + "/two.onnx", "wb") as f:
        f.write(model(two, [], [vinfo("A", ["N", 4]), vinfo("B", ["N", 4])],
                      [vinfo("sum", ["N", 4]), vinfo("prod", ["N", 4])]))
    a = np.random.default_rng(12).normal(size=(3, 4)).astype("<f4")
    b = np.random.default_rng(13).normal(size=(3, 4)).astype("<f4")
    np.save(d + "/a.npy", a)
    np.save(d + "/b.npy", b)
    np.save(d + "/sum.npy", a.astype(np.float64) + b)
    np.save(d + "/prod.npy", a.astype(np.float64) * b)
    bad = [node("secret_layer_7", "Einsum", ["X", "X"], ["Y"])]
    with open(d + "/badop.onnx", "wb") as f:
        f.write(model(bad, [], [vinfo("X", ["N", 4])], [vinfo("Y", ["N", 3])]))
    x = np.random.default_rng(11).normal(size=(5, 4)).astype("<f4")
    np.save(d + "/input.npy", x)
    np.save(d + "/input_f64.npy", x.astype("<f8"))
    with open(d + "/input.csv", "w") as f:
        for row in x:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    xd = x.astype(np.float64)
    z = np.maximum(xd @ w1.astype(np.float64) + b1, 0) @ w2.astype(np.float64) + b2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.save(d + "/expected.npy", e / e.sum(axis=1, keepdims=True))


def check(got, want):
    g = np.load(got) if got.endswith(".npy") else np.loadtxt(got, delimiter=",", ndmin=2)
    w = np.load(want)
    if g.shape != w.shape or not np.allclose(g, w, rtol=1e-5, atol=1e-6):
        print("got", g.dtype, g.shape, g.tolist(), "want", w.shape, w.tolist())
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    main(sys.argv[1])
