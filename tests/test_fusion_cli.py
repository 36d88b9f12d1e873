"""`antispoof fuse` and `antispoof calibrate`: score files joined by ID, fusion that helps on held-out data,
calibration that reaches min Cllr, and clear errors for mismatched files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from error_bounds import U64, gamma

from cli.main import AntispoofGroup
from cli.reporting import calibrate, fuse
from lfcc_gmm.fusion import LinearFusion
from lfcc_gmm.metrics import cllr, compute_eer, min_cllr
from lfcc_gmm.report import align_score_files
from lfcc_gmm.scorefiles import read_scores, write_scores

N = 600  # trials per class and attack


def _run(*args: str):
    return CliRunner().invoke(AntispoofGroup(commands=[fuse, calibrate]), list(map(str, args)))


def _complementary(folder, subset: str, seed: int, labelled: bool = True):
    """Two systems' score files on the same trials (each file in its own order), each blind to one attack.

    Returns the two paths and the ground truth (ids, keys, attacks, scores matrix) in trial order.
    """
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = np.array([f"{subset}_{i:05d}" for i in range(3 * N)])
    keys = np.repeat(["bonafide", "spoof", "spoof"], N)
    attacks = np.repeat(["-", "A01", "A02"], N)
    mean_a = np.where(keys == "bonafide", 2.0, np.where(attacks == "A02", 1.5, -2.0))
    mean_b = np.where(keys == "bonafide", 2.0, np.where(attacks == "A02", -2.0, 1.5))
    matrix = np.column_stack((rng.normal(mean_a, 1.0), rng.normal(mean_b, 1.0)))
    paths = []
    for column, name in enumerate(("lfcc", "rawnet")):
        order = rng.permutation(ids.size)
        paths.append(folder / f"{name}.{subset}.txt")
        write_scores(paths[-1], list(ids[order]), matrix[order, column],
                     list(attacks[order]) if labelled else None, list(keys[order]) if labelled else None)
    return paths, (ids, keys, attacks, matrix)


def _rows(ids, order) -> list[int]:
    """Where each ID of ``order`` sits in ``ids``."""
    position = {file_id: i for i, file_id in enumerate(ids)}
    return [position[file_id] for file_id in order]


def _transform_rounding(model: LinearFusion, matrix) -> np.ndarray:
    """Two float64 evaluations of coef . s + intercept (the fused file's, from an array of another layout, and
    ours) differ by at most 2 gamma_3 of the sum of the terms' magnitudes: a bound on the largest of them."""
    return 2 * gamma(3, U64) * float((np.abs(matrix) @ np.abs(model.coef_) + abs(model.intercept_)).max())


def _eer(scores, keys) -> float:
    return compute_eer(scores[keys == "bonafide"], scores[keys == "spoof"])[0]


def _protocol(path, ids, keys, attacks):
    path.write_text("".join(f"SPK {i} - {a} {k}\n" for i, a, k in zip(ids, attacks, keys, strict=True)))
    return path


def test_fusion_of_complementary_systems_beats_each_on_held_out_data(tmp_path):
    dev, _ = _complementary(tmp_path, "dev", seed=1)
    evaluation, (ids, keys, attacks, matrix) = _complementary(tmp_path, "eval", seed=2)
    fused_path = tmp_path / "fused.txt"
    result = _run("fuse", "--train", dev[0], "--train", dev[1], "--apply", evaluation[0], "--apply", evaluation[1],
                  "-o", fused_path)
    assert result.exit_code == 0, result.output
    fused = read_scores(fused_path)
    rows = _rows(ids, read_scores(evaluation[0]).ids)  # the output follows the first --apply file
    assert fused.keys == list(keys[rows]) and fused.attacks == list(attacks[rows])  # 4 columns
    keys, matrix = keys[rows], matrix[rows]
    single = [_eer(matrix[:, i], keys) for i in range(2)]
    assert min(single) > 0.2
    assert _eer(fused.scores, keys) < 0.5 * min(single)

    model = LinearFusion.load(tmp_path / "fused.fusion.json")  # the default --model-out
    assert model.system_names_ == ["lfcc.dev", "rawnet.dev"] and (model.coef_ > 0).all()
    np.testing.assert_allclose(fused.scores, model.transform(matrix), rtol=0, atol=_transform_rounding(model, matrix))
    lines = result.output.splitlines()
    assert lines[0].startswith("LLR = +") and "·[lfcc.dev] +" in lines[0] and "·[rawnet.dev]" in lines[0]
    rows = {tuple(line.split()[:2]): line.split()[2] for line in lines[2:-2]}
    # The table prints four decimals: within half of the last one.
    assert float(rows["apply", "fused"]) == pytest.approx(100 * _eer(fused.scores, keys), abs=5e-5)
    assert float(rows["apply", "lfcc.eval"]) == pytest.approx(100 * single[0], abs=5e-5)


def test_keys_from_a_protocol_give_the_same_fusion_and_a_2_column_output(tmp_path):
    dev4, (dev_ids, dev_keys, dev_attacks, _) = _complementary(tmp_path / "four", "dev", seed=3)
    dev2, _ = _complementary(tmp_path, "dev", seed=3, labelled=False)
    evaluation, (ids, _, _, matrix) = _complementary(tmp_path, "eval", seed=4, labelled=False)
    protocol = _protocol(tmp_path / "dev.protocol.txt", dev_ids, dev_keys, dev_attacks)
    common = ["--apply", evaluation[0], "--apply", evaluation[1], "--json"]
    by_protocol = _run("fuse", "--train", dev2[0], "--train", dev2[1], "--train-protocol", protocol,
                       "-o", tmp_path / "p.txt", "--model-out", tmp_path / "p.json", *common)
    by_columns = _run("fuse", "--train", dev4[0], "--train", dev4[1], "-o", tmp_path / "c.txt", *common)
    assert by_protocol.exit_code == 0 and by_columns.exit_code == 0, by_protocol.output + by_columns.output
    summary = json.loads(by_protocol.output)
    assert summary["model_file"] == str(tmp_path / "p.json")
    assert summary["model"]["weights"] == json.loads(by_columns.output)["model"]["weights"]
    assert summary["apply"] == {"n_trials": 3 * N, "labelled": False}
    assert summary["train"]["fused"]["eer_percent"] < 0.5 * min(
        s["eer_percent"] for s in summary["train"]["systems"].values())
    fused = read_scores(tmp_path / "p.txt")
    assert not fused.labelled and fused.ids == read_scores(evaluation[0]).ids  # 2 columns, first file's order
    assert (tmp_path / "p.txt").read_text().splitlines()[0].count(" ") == 1
    model = LinearFusion.load(tmp_path / "p.json")
    expected = model.transform(matrix[_rows(ids, fused.ids)])
    np.testing.assert_allclose(fused.scores, expected, rtol=0, atol=_transform_rounding(model, matrix))


def test_calibration_reaches_min_cllr_on_held_out_data(tmp_path):
    def scores(subset: str, seed: int):
        rng = np.random.default_rng(seed)
        keys = np.repeat(["bonafide", "spoof"], [N, 4 * N])
        raw = 3 * rng.normal(np.where(keys == "bonafide", 2.0, -1.0), 1.5) + 5  # badly scaled and shifted
        path = tmp_path / f"sys.{subset}.txt"
        write_scores(path, [f"{subset}{i}" for i in range(keys.size)], raw, ["S"] * keys.size, list(keys))
        return path, raw, keys

    dev, _, _ = scores("dev", 5)
    evaluation, raw, keys = scores("eval", 6)
    result = _run("calibrate", "--train", dev, "--apply", evaluation, "-o", tmp_path / "llr.txt", "--prior", "0.2")
    assert result.exit_code == 0, result.output
    assert "calibrated" in result.output
    llr = read_scores(tmp_path / "llr.txt").scores
    bona, spoof = llr[keys == "bonafide"], llr[keys == "spoof"]
    assert min_cllr(bona, spoof) <= cllr(bona, spoof) < min_cllr(bona, spoof) + 0.02
    assert cllr(raw[keys == "bonafide"], raw[keys == "spoof"]) > cllr(bona, spoof) + 0.5
    assert _eer(llr, keys) == _eer(raw, keys)  # an increasing affine map keeps the ranking
    assert LinearFusion.load(tmp_path / "llr.fusion.json").prior == 0.2


def test_mismatched_ids_are_data_errors_with_counts_and_examples(tmp_path):
    dev, (ids, keys, attacks, _) = _complementary(tmp_path, "dev", seed=7)
    evaluation, _ = _complementary(tmp_path, "eval", seed=8)
    lines = dev[1].read_text().splitlines(keepends=True)
    dropped = [line.split()[0] for line in lines[:2]]
    short = tmp_path / "short.txt"
    short.write_text("".join(lines[2:]) + "intruder - bonafide 1.0\n")
    result = _run("fuse", "--train", dev[0], "--train", short, "--apply", evaluation[0], "--apply", evaluation[1],
                  "-o", tmp_path / "f.txt")
    assert result.exit_code == 1
    assert f"{short}: 1 of {3 * N - 1} IDs are not in {dev[0]}: intruder" in result.output
    examples = result.output.split(f"{short}: 2 of {3 * N} IDs of {dev[0]} are missing: ")[1].splitlines()[0]
    assert sorted(examples.split(", ")) == sorted(dropped)
    assert not (tmp_path / "f.txt").exists()

    protocol = _protocol(tmp_path / "protocol.txt", ids[:-1], keys[:-1], attacks[:-1])
    result = _run("calibrate", "--train", dev[0], "--train-protocol", protocol, "--apply", evaluation[0],
                  "-o", tmp_path / "c.txt")
    assert result.exit_code == 1
    assert f"{dev[0]}: 1 of {3 * N} scored IDs are not in the protocol: {ids[-1]}" in result.output


def test_other_data_and_usage_errors(tmp_path):
    dev, (ids, _, _, _) = _complementary(tmp_path, "dev", seed=9)
    unlabelled, _ = _complementary(tmp_path / "two-column", "dev", seed=9, labelled=False)
    flipped = tmp_path / "flipped.txt"
    flipped.write_text(dev[1].read_text().replace("bonafide", "BONA").replace(" spoof ", " bonafide ")
                       .replace("BONA", "spoof"))
    result = _run("fuse", "--train", dev[0], "--train", flipped, "--apply", dev[0], "--apply", dev[1],
                  "-o", tmp_path / "f.txt")
    assert result.exit_code == 1 and f"{flipped}: {3 * N} of {3 * N} trials have another key than in" in result.output

    result = _run("calibrate", "--train", unlabelled[0], "--apply", dev[0], "-o", tmp_path / "c.txt")
    assert result.exit_code == 1 and "training needs keys" in result.output

    result = _run("fuse", "--train", dev[0], "--train", dev[1], "--apply", dev[0], "-o", tmp_path / "f.txt")
    assert result.exit_code == 2 and "2 --train file(s) but 1 --apply" in result.output
    assert _run("calibrate", "--train", dev[0], "--apply", dev[0], "-o", tmp_path / "c.txt",
                "--prior", "1").exit_code == 2
    assert _run("fuse", "--apply", dev[0], "-o", tmp_path / "f.txt").exit_code == 2


def test_help_teaches():
    for command in ("fuse", "calibrate"):
        result = _run(command, "--help")
        assert result.exit_code == 0
        text = " ".join(result.output.split())
        assert "log-likelihood ratio" in text and "LLR > 0 favours bona fide" in text and "Example" in text
    assert "--train lfcc.dev.txt --train rawnet2.dev.txt" in _run("fuse", "--help").output


def test_align_score_files_orders_rows_like_the_first_file(tmp_path):
    paths, (ids, keys, _, matrix) = _complementary(tmp_path, "dev", seed=10)
    aligned = align_score_files(paths)
    first = read_scores(paths[0])
    assert aligned.ids == first.ids and aligned.names == ["lfcc.dev", "rawnet.dev"]
    rows = _rows(ids, aligned.ids)
    np.testing.assert_array_equal(aligned.matrix, matrix[rows])
    np.testing.assert_array_equal(aligned.keys, keys[rows])
