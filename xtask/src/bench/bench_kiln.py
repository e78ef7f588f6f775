"""kiln's side of `cargo xtask bench ptq`, run in the peers' venv with the harness (bench_ptq.py) importable.

  bench_kiln.py export   --key K [--heldout H] --n N --out X.npy
      the calibration samples bench_ptq.py feeds the peers (Spec.samples("calib", N, seed=1), as its
      quantize_child does), preprocessed, stacked into one float32 .npy (first axis = samples)
  bench_kiln.py measure  --out P.json [--stdout F] -- CMD ...
      runs CMD, records its wall time and peak RSS (wait4 ru_maxrss, as the harness does without GNU time)
  bench_kiln.py evaluate --key K --model FP32 --int8 Q --name NAME --report R.json --proc P.json --out RES.json
                         [--heldout H] [--extra-eval N]
      the harness's own evaluation, executed-op count and alternating-rounds latency for kiln's INT8 model;
      writes a result JSON in bench_ptq.py's format (method "kiln") for summarize.py
  bench_kiln.py extra    --key K --model FP32 --n-eval N --out E.json Q.onnx ...
      the task metric of already quantized models on N evaluation samples (YOLO: a less noisy view)
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

import bench_ptq as B

SESSION_OPTIONS = "CPUExecutionProvider, intra_op_num_threads=2, inter_op_num_threads=1, ORT_SEQUENTIAL, ORT_ENABLE_ALL"
BRIEF_KEYS = ("map50_vs_fp32", "f1_at_conf0.25_iou0.5", "n_gt_boxes_fp32_conf0.25", "n_int8_boxes_conf0.25",
              "top1_agreement", "acc_vs_true_label_fp32", "acc_vs_true_label_int8", "n_labeled", "cosine_global")


def export(a):
    spec = B.Spec(a.key, B.IMAGE_DIR, a.heldout)
    calib = spec.samples("calib", a.n, seed=1)  # bench_ptq.quantize_child: spec.samples("calib", a.n_calib, seed=1)
    first = calib[0][0]().astype(np.float32)
    tmp = a.out + ".tmp.npy"
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(calib),) + first.shape)
    arr[0] = first
    for i in range(1, len(calib)):
        arr[i] = calib[i][0]().astype(np.float32)
    arr.flush()
    del arr
    os.replace(tmp, a.out)
    print(json.dumps({"key": a.key, "n": len(calib), "shape": [len(calib)] + list(first.shape), "out": a.out}))


def measure(a):
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    out = open(a.stdout, "w") if a.stdout else None
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=out)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    rc = os.waitstatus_to_exitcode(status)
    if out:
        out.close()
    json.dump({"cmd": cmd, "returncode": rc, "wall_s": wall, "peak_rss_bytes": ru.ru_maxrss * 1024,
               "peak_rss_source": "wait4 rusage ru_maxrss of the process"}, open(a.out, "w"), indent=1)
    sys.exit(rc)


def _outputs(path, xs, bs=1):
    s = B.make_session(path)
    out = B.run_outputs(s, xs, bs)
    del s
    return out


def _brief(acc):
    return {k: acc[k] for k in BRIEF_KEYS if k in acc}


def evaluate(a):
    cfg = B.MODELS[a.key]
    batch = a.batch or cfg["batch"]
    n_eval = a.n_eval or cfg["n_eval"] or 10 ** 9
    rep = json.load(open(a.report))
    proc = json.load(open(a.proc)) if a.proc else {}
    cal = rep.get("calibration") or {}
    rss = cal.get("peak_rss_bytes")
    res = {"model": a.name, "spec_key": a.key, "model_path": os.path.abspath(a.model), "model_sha256": B._sha256(a.model),
           "method": "kiln", "versions": B.versions(), "session_options": SESSION_OPTIONS}
    if a.heldout:
        res["heldout_file"] = a.heldout
    spec = B.Spec(a.key, B.IMAGE_DIR, a.heldout)
    res["task"] = spec.task
    res["fp32_size_bytes"] = os.path.getsize(a.model)
    res["quant"] = {
        "returncode": proc.get("returncode", 0), "n_calib": cal.get("samples"),
        # kiln quantize also evaluates and times both models after quantizing: the quantization part is the
        # report's own PTQ wall time; the whole process is recorded next to it
        "wall_s_parent": cal.get("wall_s"), "wall_s_source": "kiln report calibration.wall_s",
        "fp32_inference_s": cal.get("fp32_inference_s"),
        "peak_rss_mb": rss / 2 ** 20 if rss else None, "peak_rss_source": "kiln report calibration.peak_rss_bytes",
        "process_wall_s": proc.get("wall_s"),
        "process_peak_rss_mb": proc["peak_rss_bytes"] / 2 ** 20 if proc.get("peak_rss_bytes") else None,
        "tool": "kiln quantize (calibration data: the harness's calib samples, exported to .npy)",
    }
    res["kiln_report"] = rep
    res["int8_size_bytes"] = os.path.getsize(a.int8)
    import onnx
    from collections import Counter
    ops = Counter(n.op_type for n in onnx.load(a.int8).graph.node)
    res["int8_graph"] = {"QuantizeLinear": ops.get("QuantizeLinear", 0), "DequantizeLinear": ops.get("DequantizeLinear", 0),
                         "n_nodes": sum(ops.values())}
    # from here on: bench_ptq.main's evaluation and latency, unchanged
    n_all = max(n_eval, a.extra_eval or 0)
    ev = spec.samples("eval", n_all, seed=2)
    xs_all = [fn() for fn, _ in ev]
    labels_all = [l for _, l in ev]
    xs, labels = xs_all[:n_eval], labels_all[:n_eval]
    res["n_eval"] = len(xs)
    t = time.perf_counter()
    fp_all = _outputs(a.model, xs_all)
    res["eval_fp32_s"] = time.perf_counter() - t
    t = time.perf_counter()
    q_all = _outputs(a.int8, xs_all)
    res["eval_int8_s"] = time.perf_counter() - t
    res["accuracy"] = B.evaluate(spec, fp_all[:len(xs)], q_all[:len(xs)], labels)
    if a.extra_eval and a.extra_eval > len(xs):
        res["accuracy_extra"] = {"n_eval": len(xs_all), **_brief(B.evaluate(spec, fp_all, q_all, labels_all))}
    x1 = xs[0][None].astype(np.float32)
    xb = np.stack(xs[:batch]).astype(np.float32) if batch > 1 else None
    paths = {"fp32": a.model, "int8": a.int8}
    try:
        res["ort_executed_ops"] = {k: B.optimized_op_counts(p) for k, p in paths.items()}
    except Exception as e:
        res["ort_executed_ops"] = "failed: %s" % e
    q_before, waited = B.wait_quiet()
    c0 = B._cpu_snapshot()
    res["latency"] = B.latency(paths, x1, xb, runs=a.runs)
    res["latency"]["other_procs_cpu_frac_before"] = q_before
    res["latency"]["waited_for_quiet_s"] = waited
    res["latency"]["other_procs_cpu_frac_during"] = B.other_cpu_frac(c0, B._cpu_snapshot())
    res["latency"]["loadavg_after"] = os.getloadavg()
    res["latency"]["input_shape_b1"] = list(x1.shape)
    L = res["latency"]
    res["speedup_b1"] = L["fp32"]["b1_median_ms"] / L["int8"]["b1_median_ms"]
    if "throughput_img_s" in L["int8"]:
        res["speedup_batch"] = L["int8"]["throughput_img_s"] / L["fp32"]["throughput_img_s"]
    res["status"] = "ok"
    B._dump(res, a.out)
    print(json.dumps({"model": a.name, "method": "kiln", "speedup_b1": res["speedup_b1"],
                      "speedup_batch": res.get("speedup_batch"), "acc": _brief(res["accuracy"])}, default=float))


def extra(a):
    spec = B.Spec(a.key, B.IMAGE_DIR, a.heldout)
    ev = spec.samples("eval", a.n_eval, seed=2)
    xs = [fn() for fn, _ in ev]
    labels = [l for _, l in ev]
    fp = _outputs(a.model, xs)
    out = {}
    for p in a.qmodels:
        try:
            out[p] = {"n_eval": len(xs), **_brief(B.evaluate(spec, fp, _outputs(p, xs), labels))}
        except Exception as e:  # e.g. a model ORT rejects
            out[p] = {"error": "%s: %s" % (type(e).__name__, str(e)[:300])}
    json.dump(out, open(a.out, "w"), indent=1, default=float)


def main():
    import onnxruntime as ort
    ort.set_default_logger_severity(3)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd_name", required=True)
    e = sub.add_parser("export")
    e.add_argument("--key", required=True)
    e.add_argument("--heldout")
    e.add_argument("--n", type=int, required=True)
    e.add_argument("--out", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--out", required=True)
    m.add_argument("--stdout")
    m.add_argument("cmd", nargs=argparse.REMAINDER)
    v = sub.add_parser("evaluate")
    for k in ("--key", "--model", "--int8", "--name", "--report", "--out"):
        v.add_argument(k, required=True)
    v.add_argument("--proc")
    v.add_argument("--heldout")
    v.add_argument("--n-eval", type=int)
    v.add_argument("--extra-eval", type=int, default=0)
    v.add_argument("--batch", type=int)
    v.add_argument("--runs", type=int, default=60)
    x = sub.add_parser("extra")
    for k in ("--key", "--model", "--out"):
        x.add_argument(k, required=True)
    x.add_argument("--heldout")
    x.add_argument("--n-eval", type=int, required=True)
    x.add_argument("qmodels", nargs="+")
    a = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    {"export": export, "measure": measure, "evaluate": evaluate, "extra": extra}[a.cmd_name](a)


if __name__ == "__main__":
    main()
