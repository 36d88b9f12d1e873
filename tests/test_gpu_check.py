"""benchmarks/gpu_check.py: its CPU dry run produces every section, and every check it says passed really ran."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest
import torch
from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "gpu_check.py"
SECTIONS = ("Device", "Parity with the CPU and the official outputs",
            "EER on the demo eval split, float32 vs autocast", "Scoring throughput, whole-file windows",
            "Training with mixed precision", "Several GPUs", "Skipped")


@pytest.fixture
def gpu_check(monkeypatch):
    """The script as a module (it imports its neighbour ``common`` as the benchmarks do)."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import gpu_check

    return gpu_check


def subsections(markdown: str) -> dict[str, str]:
    parts = re.split(r"^### (.+)$", markdown, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def table_rows(body: str) -> list[dict[str, str]]:
    lines = [line for line in body.splitlines() if line.startswith("|")]
    headers = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "")) == {"-"}, lines[1]
    return [dict(zip(headers, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
            for line in lines[2:]]


def test_replace_section_keeps_the_other_sections(gpu_check):
    head = "# Benchmark results\n\nMachine: x.\n\n## LFCC\n\nkeep a\n\n"
    new = "## GPU\n\nnew\n"
    replaced = gpu_check.replace_section(head + "## GPU\n\nold\n### sub\nold too\n\n## AASIST\n\nkeep b\n", new)
    assert replaced == head + "## GPU\n\nnew\n\n## AASIST\n\nkeep b\n"
    assert gpu_check.replace_section(replaced, new) == replaced  # idempotent
    assert gpu_check.replace_section(head + "## GPU\n\nold\n", new) == head + new  # the last section
    assert gpu_check.replace_section(head, new) == head + new  # none yet: appended


def test_budget_parts_shares_and_skips(gpu_check, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(gpu_check.time, "perf_counter", lambda: now[0])
    budget = gpu_check.Budget(100)
    budget.enter("parity")  # ends at 12 % of the budget
    assert budget.left() == pytest.approx(12)
    assert budget.allows(12, "a") and not budget.allows(12.5, "b")
    assert budget.skipped == ["b: needs about 12 s, 12 s of its part's budget left"]
    now[0] = 15.0  # parity overran; the next part still ends where it was planned
    budget.enter("eer")
    assert budget.left() == pytest.approx(5)
    budget.enter("training")  # ends at 90
    with budget.share(2):
        assert budget.left() == pytest.approx(37.5)
    assert budget.left() == pytest.approx(75)


def test_state_difference_compares_every_tensor_of_a_checkpoint(gpu_check):
    def checkpoint(shift: float = 0.0, steps: int = 3) -> dict:
        return {"model": {"w": torch.tensor([1.0, 2.0]) + torch.tensor([0.0, shift])},
                "optimizer": {"state": {0: {"step": torch.tensor(float(steps)), "exp_avg": torch.ones(2)}},
                              "param_groups": [{"lr": 1e-4}]},
                "scaler": {"scale": 1024.0}, "scheduler": None}

    assert gpu_check.state_difference(checkpoint(), checkpoint()) == 0
    assert gpu_check.state_difference(checkpoint(0.25), checkpoint()) == 0.25
    assert gpu_check.state_difference(checkpoint(steps=4), checkpoint()) == 1.0
    other = checkpoint()
    other["optimizer"]["state"][1] = {"step": torch.tensor(1.0)}
    assert gpu_check.state_difference(other, checkpoint()) == math.inf


@pytest.mark.slow  # small configs, but the official AASIST at full length too: about a minute on 2 shared cores
def test_cpu_dry_run_reports_every_section_and_its_checks_ran(reference_dir, tmp_path, gpu_check):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## LFCC throughput\n\nkeep\n\n## GPU\n\nstale\n\n"
                       "## Metrics\n\nkeep too\n")
    # A budget no shared machine overruns: every part must run (the time-boxing has its own test).
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--budget-s", "3000", "--write",
                           "--output", str(results), "--reference-dir", str(reference_dir)],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    markdown = done.stdout
    assert markdown.startswith("## GPU\n") and "Every check passed." in markdown
    written = results.read_text()
    assert written.count("## GPU\n") == 1 and "stale" not in written and markdown.strip() in written
    assert "## LFCC throughput\n\nkeep\n" in written and written.endswith("## Metrics\n\nkeep too\n")
    parts = subsections(markdown)
    assert tuple(parts) == SECTIONS

    facts = dict(re.findall(r"^\| (device|GPUs|torch|autocast dtypes) \| (.+) \|$", parts["Device"], re.MULTILINE))
    assert facts == {"device": "the CPU (dry run: no GPU in this run)", "GPUs": "0", "torch": torch.__version__,
                     "autocast dtypes": "bfloat16"}

    # Parity: one network per architecture checked (--quick), numbers within the tolerance it claims.
    parity = {row["network"]: row for row in table_rows(parts["Parity with the CPU and the official outputs"])}
    assert list(parity) == [ref.name for ref in gpu_check.REFERENCES]
    checked = set()
    for ref in gpu_check.REFERENCES:
        row = parity[ref.name]
        if ref.missing() is not None:
            assert row["verdict"].startswith("not available in this build"), row
        elif ref.architecture in checked:
            assert row["verdict"] == "skipped (--quick: one per architecture)", row
        else:
            checked.add(ref.architecture)
            assert row["verdict"] == "pass", row
            assert int(row["clips"]) == 1
            assert float(row["device fp32 vs CPU"]) <= gpu_check.PARITY_TOLERANCE
            assert float(row["device fp32 vs official"]) <= gpu_check.PARITY_TOLERANCE
            assert row["TF32 vs CPU"] == "—"  # a GPU setting
            # bfloat16 keeps 8 significant bits: it moves the outputs, but not by more than they are large.
            assert 0 < float(row["bfloat16 vs fp32"]) < 1
    assert checked == {"rawnet2", "aasist"}

    eer = table_rows(parts["EER on the demo eval split, float32 vs autocast"])
    assert len(eer) == 1 and eer[0]["verdict"] == "pass" and eer[0]["trials"] == "4"
    fp32, bf16 = float(eer[0]["fp32 EER"]), float(eer[0]["bfloat16 EER"])
    assert float(eer[0]["max change"]) == pytest.approx(abs(bf16 - fp32), abs=0.006)  # printed to 0.01 %
    assert abs(bf16 - fp32) <= 50  # one trial of two bona fide and two spoof trials: 50 %

    throughput = table_rows(parts["Scoring throughput, whole-file windows"])
    timed = [row for row in throughput if "ONNX Runtime" not in row["network"]]
    assert {(row["network"].split(" (")[0], row["precision"], row["batch"]) for row in timed} == {
        (network, precision, batch) for network in ("AASIST", "RawNet2 asvspoof2021")
        for precision in ("float32", "autocast bfloat16") for batch in ("1", "2")}
    for row in timed:
        # One second of audio in the small configs' 8,000-sample windows every 4,000 samples.
        assert row["windows/file"] == "3.00"
        assert float(row["device files/s"]) > 0
        if row["precision"] == "float32":
            ratio = float(row["device files/s"]) / float(row["CPU files/s"])
            assert float(row["device / CPU"].rstrip("x")) == pytest.approx(ratio, rel=0.05, abs=0.05)
        else:
            assert row["CPU files/s"] == "—"
    onnx = [row for row in throughput if "ONNX Runtime" in row["network"]]
    assert onnx and all(row["network"].startswith("AASIST (small config), ONNX Runtime") for row in onnx)
    if onnx[0]["device files/s"].startswith("not available"):  # a build without the ONNX export or onnxruntime
        assert len(onnx) == 1
    else:  # the exported small AASIST, timed on the CPU provider at the dry run's batch sizes
        assert [row["batch"] for row in onnx] == ["1", "2"]
        for row in onnx:
            assert float(row["device files/s"]) > 0 and row["windows/file"] == "3.00"
            difference = re.search(r"max diff to torch CPU (\S+)$", row["network"])
            assert difference is not None and float(difference.group(1)) <= gpu_check.PARITY_TOLERANCE

    training = table_rows(parts["Training with mixed precision"])
    assert [row["recipe"] for row in training] == ["RawNet2 asvspoof2021 (small config)", "AASIST (small config)"]
    for row in training:
        assert row["batch × samples"] == "2 × 8000" and row["steps"] == "4" and float(row["steps/s"]) > 0
        assert row["resume"] == "pass: bit for bit" and row["peak GPU memory"] == "—"
        first, last = map(float, row["loss"].split(" → "))
        assert row["loss falls"] == ("yes" if last < first else "no") + " (not judged: --quick)"

    assert parts["Several GPUs"].strip().startswith("Not available: this run has 0 GPUs")
    skipped = parts["Skipped"]
    assert "--quick checks one network per architecture" in skipped and "budget" not in skipped


@pytest.mark.slow  # two training processes under torchrun: tens of seconds on 2 shared cores
def test_torchrun_part_runs_as_a_dry_run_on_cpu_processes(gpu_check, tmp_path):
    from lfcc_gmm.demo import load_corpus

    settings = gpu_check.Settings(torch.device("cpu"), quick=True, reference_dir=tmp_path, cpu_threads=1, steps=4,
                                  workers=0, amp_dtypes=("bfloat16",))
    budget = gpu_check.Budget(600)
    budget.enter("multi-gpu")
    train_split = load_corpus(gpu_check.DEMO_DIR)["train"]
    part = gpu_check.multi_gpu_part(settings, budget, train_split, {"rawnet2": 2.0}, tmp_path, processes=2)
    assert not part.failures, "\n".join(part.lines)
    text = "\n".join(part.lines)
    assert text.startswith("`torchrun --nproc_per_node=2` of `antispoof train rawnet2 --epochs 3 --batch-size 2")
    rows = table_rows(text)
    assert [row["processes"] for row in rows] == ["1", "2"]
    examples = float(rows[1]["examples/s"])
    assert examples > 0 and float(rows[1]["speed-up over one"].rstrip("x")) == pytest.approx(examples / 2, rel=0.01)
    history = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert json.loads((tmp_path / "ddp" / "run.json").read_text())["options"]["world_size"] == 2
