"""AASIST CPU inference: the official computation against rawnet.aasist.AASIST, side by side.

The baseline below transcribes, step by step, what the official ``models/AASIST.py`` forward computes in eval
mode, reading the same official weights from the state_dict: it clones the sinc filter bank on every call and
applies it with a direct ``conv1d`` (the official ``CONV`` builds the bank once, in ``__init__``), uses NCHW
tensors, separate batch norms, ``max_pool2d``, and evaluates the discarded pre-activation ``bn1``/SELU of every
residual block. Beside it: the module with its measured fast paths off (*plain*: the official order of
operations, what :func:`rawnet.tuning.fast_paths_off` runs), the default (*ours*: the fused or the official encoder
and the graph layers on one thread or torch's count, whichever is faster as timed on the calls), the ``aasist-onnx``
scorer (the bundled ONNX graph of the same weights run by ONNX Runtime on as many threads, what
``--scorer aasist-onnx`` runs; needs the ``onnx`` extra). The plain module is timed twice: *A/A*, plain against
plain again, is what noise alone makes of a ratio, the band against which *vs plain* (plain / ours) is read. All
get the same padded reference clips; their logits must agree to 1e-4 with the official outputs before any timing
is printed. Medians of interleaved runs, threads fixed (2 by default).

Run from the repository root: ``python benchmarks/bench_aasist.py [--quick]``. Needs ``../shared/reference``
(or ``ANTISPOOF_REFERENCE_DIR``); without it the script says so and exits.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from common import REFERENCE_DIR, competing_processes, machine_summary, paired_ratio

from rawnet.aasist import AASIST
from rawnet.checkpoint import read_torch_file
from rawnet.functional import pad_or_truncate
from rawnet.sinc import band_edges, sinc_filters
from rawnet.tuning import FastestChoice, fast_paths_off

TOLERANCE = 1e-4
#: Calls before the timing: the measured choice's warm-up, every candidate timed `rounds` times (two per fast path).
WARM_UP_CALLS = 2 * FastestChoice().rounds
CLIPS = ("LA_T_1272637.flac", "espeak_en.wav", "chirp_noise.wav", "short_1377.wav")
#: The bundled weights (and ONNX graphs) equal to each official file.
BUNDLED = {"AASIST.pth": "aasist", "AASIST-L.pth": "aasist-l"}

State = dict[str, torch.Tensor]


def _bn(x: torch.Tensor, sd: State, prefix: str) -> torch.Tensor:
    return F.batch_norm(
        x, sd[prefix + "running_mean"], sd[prefix + "running_var"], sd[prefix + "weight"], sd[prefix + "bias"]
    )


def _linear(x: torch.Tensor, sd: State, prefix: str) -> torch.Tensor:
    return F.linear(x, sd[prefix + "weight"], sd[prefix + "bias"])


def _node_bn_selu(x: torch.Tensor, sd: State, prefix: str) -> torch.Tensor:
    shape = x.size()
    return F.selu(_bn(x.view(-1, shape[-1]), sd, prefix).view(shape))


def _pairwise(x: torch.Tensor) -> torch.Tensor:
    x = x.unsqueeze(2).expand(-1, -1, x.size(1), -1)
    return x * x.transpose(1, 2)


def official_gat(x: torch.Tensor, sd: State, prefix: str, temperature: float) -> torch.Tensor:
    att = torch.matmul(torch.tanh(_linear(_pairwise(x), sd, prefix + "att_proj.")), sd[prefix + "att_weight"])
    att = F.softmax(att / temperature, dim=-2)
    out = _linear(torch.matmul(att.squeeze(-1), x), sd, prefix + "proj_with_att.")
    return _node_bn_selu(out + _linear(x, sd, prefix + "proj_without_att."), sd, prefix + "bn.")


def official_htrg_gat(x1, x2, master, sd: State, prefix: str, temperature: float):
    n1, n2 = x1.size(1), x2.size(1)
    x = torch.cat([_linear(x1, sd, prefix + "proj_type1."), _linear(x2, sd, prefix + "proj_type2.")], dim=1)
    att = torch.tanh(_linear(_pairwise(x), sd, prefix + "att_proj."))
    board = torch.zeros_like(att[:, :, :, 0]).unsqueeze(-1)
    board[:, :n1, :n1, :] = torch.matmul(att[:, :n1, :n1, :], sd[prefix + "att_weight11"])
    board[:, n1:, n1:, :] = torch.matmul(att[:, n1:, n1:, :], sd[prefix + "att_weight22"])
    board[:, :n1, n1:, :] = torch.matmul(att[:, :n1, n1:, :], sd[prefix + "att_weight12"])
    board[:, n1:, :n1, :] = torch.matmul(att[:, n1:, :n1, :], sd[prefix + "att_weight12"])
    att = F.softmax(board / temperature, dim=-2)
    att_m = torch.matmul(torch.tanh(_linear(x * master, sd, prefix + "att_projM.")), sd[prefix + "att_weightM"])
    att_m = F.softmax(att_m / temperature, dim=-2)
    master = _linear(torch.matmul(att_m.squeeze(-1).unsqueeze(1), x), sd, prefix + "proj_with_attM.") + _linear(
        master, sd, prefix + "proj_without_attM."
    )
    out = _linear(torch.matmul(att.squeeze(-1), x), sd, prefix + "proj_with_att.")
    out = _node_bn_selu(out + _linear(x, sd, prefix + "proj_without_att."), sd, prefix + "bn.")
    return out.narrow(1, 0, n1), out.narrow(1, n1, n2), master


def official_pool(h: torch.Tensor, sd: State, prefix: str, ratio: float) -> torch.Tensor:
    scores = torch.sigmoid(_linear(h, sd, prefix + "proj."))
    _, idx = torch.topk(scores, max(int(h.size(1) * ratio), 1), dim=1)
    return torch.gather(h * scores, 1, idx.expand(-1, -1, h.size(2)))


def official_band_pass(config: dict) -> torch.Tensor:
    """The band-pass filters the official ``CONV`` builds for ``config`` (it makes an even kernel length odd)."""
    kernel = config["first_conv"] + (config["first_conv"] % 2 == 0)
    return torch.from_numpy(sinc_filters(band_edges(config["filts"][0]), kernel)).float()


def official_forward(sd: State, config: dict, band_pass: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The official eval-mode forward, (batch, samples) → logits (batch, 2)."""
    ratios, temps = config["pool_ratios"], config["temperatures"]
    filters = band_pass.clone().view(band_pass.shape[0], 1, band_pass.shape[1])
    x = F.conv1d(x.unsqueeze(1), filters).unsqueeze(1)
    x = F.selu(_bn(F.max_pool2d(torch.abs(x), (3, 3)), sd, "first_bn."))
    for i in range(6):
        p = f"encoder.{i}.0."
        if i > 0:
            F.selu(_bn(x, sd, p + "bn1."))  # computed, then unused, by the official block
        out = F.conv2d(x, sd[p + "conv1.weight"], sd[p + "conv1.bias"], padding=(1, 1))
        out = F.conv2d(F.selu(_bn(out, sd, p + "bn2.")), sd[p + "conv2.weight"], sd[p + "conv2.bias"], padding=(0, 1))
        if p + "conv_downsample.weight" in sd:
            x = F.conv2d(x, sd[p + "conv_downsample.weight"], sd[p + "conv_downsample.bias"], padding=(0, 1))
        x = F.max_pool2d(out + x, (1, 3))
    e_s = torch.max(torch.abs(x), dim=3)[0].transpose(1, 2) + sd["pos_S"]
    out_s = official_pool(official_gat(e_s, sd, "GAT_layer_S.", temps[0]), sd, "pool_S.", ratios[0])
    e_t = torch.max(torch.abs(x), dim=2)[0].transpose(1, 2)
    out_t = official_pool(official_gat(e_t, sd, "GAT_layer_T.", temps[1]), sd, "pool_T.", ratios[1])
    branches = []
    for k in (1, 2):
        t, s, m = official_htrg_gat(out_t, out_s, sd[f"master{k}"], sd, f"HtrgGAT_layer_ST{k}1.", temps[2])
        s = official_pool(s, sd, f"pool_hS{k}.", ratios[2])
        t = official_pool(t, sd, f"pool_hT{k}.", ratios[2])
        t_aug, s_aug, m_aug = official_htrg_gat(t, s, m, sd, f"HtrgGAT_layer_ST{k}2.", temps[2])
        branches.append((t + t_aug, s + s_aug, m + m_aug))
    (t1, s1, m1), (t2, s2, m2) = branches
    out_t, out_s, master = torch.max(t1, t2), torch.max(s1, s2), torch.max(m1, m2)
    hidden = torch.cat(
        [
            torch.max(torch.abs(out_t), dim=1)[0],
            torch.mean(out_t, dim=1),
            torch.max(torch.abs(out_s), dim=1)[0],
            torch.mean(out_s, dim=1),
            master.squeeze(1),
        ],
        dim=1,
    )
    return _linear(hidden, sd, "out_layer.")


def timed(fn: Callable[..., object], *args: object) -> float:
    """Seconds taken by one call of ``fn(*args)``."""
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def onnx_runner(weights: str, threads: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The ``aasist-onnx`` scorer of the bundled ``weights`` (its ONNX graph run by ONNX Runtime on ``threads``
    intra-op threads) as a function of a batch; None without onnxruntime (the ``onnx`` extra)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    from rawnet.onnx_scorers import AASISTONNXScorer

    graph = AASISTONNXScorer.load(BUNDLED[weights], batch_size=64, threads=threads)
    return lambda x: torch.from_numpy(graph.outputs(x.numpy()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 1 only, 3 runs")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per case (default 9, quick 3)")
    parser.add_argument("--competing", type=int, default=0,
                        help="other processes kept busy during the timing (a shared machine); default 0")
    args = parser.parse_args()
    folder = REFERENCE_DIR / "aasist"
    if not folder.is_dir():
        print(f"skipped: official AASIST reference files not found at {folder} (set ANTISPOOF_REFERENCE_DIR)")
        return
    torch.set_num_threads(args.threads)
    runs = args.runs or (3 if args.quick else 9)
    batches = (1,) if args.quick else (1, 8)
    expected = json.loads((folder / "official_outputs.json").read_text())
    load = f"{args.competing} other busy process(es)" if args.competing else "nothing else running"
    print(f"Machine: {machine_summary()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {load}, {runs} timed runs per case "
          f"(ours after {WARM_UP_CALLS} warm-up calls, its re-timings of slower candidates included); vs plain = "
          "plain / ours and A/A = plain / plain again: median and quartiles of the ratios of calls made moments apart")
    with competing_processes(args.competing):
        for weights in ("AASIST.pth", "AASIST-L.pth"):
            compare(folder / weights, expected[weights], batches, runs, args.threads)


def compare(path: Path, expected: dict, batches: tuple[int, ...], runs: int, threads: int) -> None:
    """Check ours against the transcription and the official logits, then time both in alternation."""
    weights = path.name
    folder = path.parent
    audio = REFERENCE_DIR / "lfcc" / "audio"
    config = json.loads((folder / weights.replace(".pth", ".json")).read_text())
    state = read_torch_file(folder / weights)
    model = AASIST.from_pretrained(folder / weights)
    band_pass = official_band_pass(config)
    clips = [pad_or_truncate(sf.read(audio / name, dtype="float64")[0], config["nb_samp"]) for name in CLIPS]
    runners: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "official": lambda x: official_forward(state, config, band_pass, x),
        "plain": lambda x: plain(model, x),
        "ours": model,
        "plain again": lambda x: plain(model, x),
    }
    onnx = onnx_runner(weights, threads)
    if onnx is not None:
        runners["aasist-onnx"] = onnx
    for batch in batches:
        x = torch.from_numpy(np.stack([clips[i % len(clips)] for i in range(batch)])).float()
        want = torch.tensor([expected[CLIPS[i % len(CLIPS)]]["logits"] for i in range(batch)])
        with torch.inference_mode():
            for _ in range(WARM_UP_CALLS):
                model(x)
            diffs = {name: (run(x) - want).abs().max().item() for name, run in runners.items()}
        if max(diffs.values()) > TOLERANCE:
            sys.exit(f"{weights} batch {batch}: logits differ from official_outputs.json by {diffs}")
        times: dict[str, list[float]] = {name: [] for name in runners}
        with torch.inference_mode():
            for _ in range(runs):
                for name, run in runners.items():
                    times[name].append(timed(run, x))
        t = {name: statistics.median(values) for name, values in times.items()}
        line = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in t.items())
        ratios = ", ".join(f"{name} {t['official'] / t[name]:.2f}x" for name in t
                           if name not in ("official", "plain again"))
        against_plain = paired_ratio(times["plain"], times["ours"])
        noise = paired_ratio(times["plain"], times["plain again"])
        print(f"{weights:13s} batch {batch}: {line}; speed-up vs official: {ratios}; vs plain {against_plain}, "
              f"A/A {noise} (max |diff| vs official_outputs.json {max(diffs.values()):.1e})")


def plain(model: AASIST, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` with the measured fast paths off."""
    with fast_paths_off():
        return model(x)


if __name__ == "__main__":
    main()
