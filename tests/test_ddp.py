"""DistributedDataParallel through torchrun: two CPU processes (gloo) train one run with identical weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import synthetic_corpus
from error_bounds import U32, gamma

from lfcc_gmm.metrics import compute_eer
from rawnet.data import WaveformDataset
from rawnet.precision import order_tolerance
from rawnet.spec import load_model_file

CONFIG = {"nb_samp": 8000, "first_conv": 65, "in_channels": 1, "filts": [4, [4, 4], [4, 8], [8, 8]],
          "blocks": [2, 4], "nb_fc_node": 8, "gru_node": 8, "nb_gru_layer": 1, "nb_classes": 2}

# Each process trains, then writes what it ended with, so the test can compare the ranks.
SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import torch
    from lfcc_gmm.protocols import read_protocol
    from rawnet.catalog import Recipe
    from rawnet.spec import ModelSpec
    from rawnet.training import train

    root = Path(sys.argv[1])
    torch.set_num_threads(1)
    result = train(ModelSpec("rawnet2", "asvspoof2021", json.loads(sys.argv[2])), read_protocol(root / "train.csv"),
                   root / "run", Recipe(epochs=1, batch_size=2, lr=1e-3, weight_decay=1e-4),
                   dev_trials=read_protocol(root / "dev.csv"), device="cpu", seed=3)
    torch.save(result.model.state_dict(), root / f"rank{result.rank}.pth")
    (root / f"rank{result.rank}.json").write_text(json.dumps(result.history))
""")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_list(path: Path, trials) -> None:
    path.write_text("".join(f"{t.path},{t.key}\n" for t in trials))


@pytest.mark.slow
def test_two_cpu_processes_train_one_run(tmp_path):
    train_trials = synthetic_corpus(tmp_path / "train", n_per_class=4)
    dev_trials = synthetic_corpus(tmp_path / "dev", n_per_class=4, seed=1)[:7]  # odd: one rank's shard is padded
    write_list(tmp_path / "train.csv", train_trials)
    write_list(tmp_path / "dev.csv", dev_trials)
    (tmp_path / "ddp_script.py").write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr", "127.0.0.1",
         "--master_port", str(free_port()), str(tmp_path / "ddp_script.py"), str(tmp_path), json.dumps(CONFIG)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    ranks = [torch.load(tmp_path / f"rank{r}.pth", weights_only=True) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    for key in ranks[0]:  # parameters through the all-reduce, BatchNorm statistics through the final broadcast
        assert torch.equal(ranks[0][key], ranks[1][key]), key

    run = tmp_path / "run"
    history = json.loads((run / "metrics.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    assert len(history) == len(rank1) == 1
    untimed = [{k: v for k, v in row.items() if k != "seconds"} for row in (history[0], rank1[0])]
    assert untimed[0] == untimed[1]
    assert json.loads((run / "run.json").read_text())["options"]["world_size"] == 2
    saved = torch.load(run / "best.pth", weights_only=True)
    assert not any(k.startswith("module.") for k in saved["state_dict"])
    assert all(torch.equal(saved["state_dict"][k], ranks[0][k]) for k in ranks[0])

    # The dev figures gathered from both shards equal a single-process pass over the whole dev set.
    model, _ = load_model_file(run / "best.pth")
    data = WaveformDataset(dev_trials, CONFIG["nb_samp"])
    with torch.no_grad():
        output = model(torch.stack([data[i][0] for i in range(len(data))]))
    labels = torch.from_numpy(data.labels)
    scores = output[:, 1].double().numpy()
    eer, _ = compute_eer(scores[data.labels == 1], scores[data.labels == 0])
    # The EER depends only on the order of the scores, which rounding in other batches does not change here.
    assert history[0]["dev_eer"] == eer
    dev_loss = F.cross_entropy(output, labels, weight=torch.tensor([0.1, 0.9])).item()
    # The shards' outputs differ by another order's rounding (order_tolerance), which the weighted cross-entropy
    # passes on at most twice; each float32 weighted mean of n positive terms rounds within gamma_(n+2).
    inputs = torch.stack([data[i][0] for i in range(len(data))])
    tolerance = 2 * order_tolerance(model, inputs) + 2 * gamma(len(data) + 2, U32) * dev_loss
    assert history[0]["dev_loss"] == pytest.approx(dev_loss, rel=0, abs=tolerance)
    assert np.isfinite(history[0]["train_loss"])
