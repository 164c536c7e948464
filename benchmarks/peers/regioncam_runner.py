"""Regions of a 2-input ReLU network over [-1, 1]^2 with regioncam (peer for benchmarks).

Usage (in benchmarks/.venv-regioncam):  python regioncam_runner.py NET.npz [CODES_OUT.npz]

NET.npz holds W0, b0, W1, b1, ... (W of shape (out, in)), every layer followed by a ReLU (a plane
slice is folded into W0, b0 by the caller). regioncam computes in float32. Prints one JSON line
{"regions": N, "seconds": T, "maxrss_mb": M}; T covers building the partition only. With
CODES_OUT, also writes every face's activation pattern (bit-packed, all layers) and the centroid
of its vertices, for the caller to compare with powercells.
"""

import json
import resource
import sys
import time

import numpy as np
import regioncam


def peak_rss_mb():
    """Peak resident memory (VmHWM, which a forked-and-exec'd process does not inherit)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main():
    data = np.load(sys.argv[1])
    n = len([k for k in data.files if k.startswith("W")])
    t0 = time.perf_counter()
    cam = regioncam.Regioncam(size=1.0)          # the square [-1, 1]^2
    relu_layers = []
    for i in range(n):
        W = np.asarray(data[f"W{i}"], dtype=np.float32)
        b = np.asarray(data[f"b{i}"], dtype=np.float32)
        cam.linear(W.T.copy(), b)                # regioncam: x_out = x_in @ weight + bias
        relu_layers.append(cam.relu())
    seconds = time.perf_counter() - t0
    regions = cam.num_faces
    out = {"regions": int(regions), "seconds": round(seconds, 4)}
    if len(sys.argv) > 2:
        codes = []
        for layer in relu_layers:
            act = np.asarray(cam.face_activations(layer))     # (faces, d + 1, K): the face's map
            codes.append(np.packbits(np.abs(act).sum(axis=1) > 0, axis=1))
            del act
        inputs = np.asarray(cam.vertex_inputs)
        centroid = np.array([inputs[np.asarray(f.vertex_ids)].mean(axis=0) for f in cam.faces])
        widths = [int(data[f"W{i}"].shape[0]) for i in range(n)]
        np.savez(sys.argv[2], codes=np.concatenate(codes, axis=1), widths=widths,
                 centroid=centroid)
    out["maxrss_mb"] = peak_rss_mb()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
