"""Comparison tables, DET/histogram figures and report folders, through the library and `antispoof compare`."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.special import ndtri

from cli.main import AntispoofGroup
from cli.reporting import compare
from lfcc_gmm.bootstrap import bootstrap_ci, paired_bootstrap
from lfcc_gmm.metrics import compute_eer, det_points, evaluate
from lfcc_gmm.plots import det_curves, det_figure, histogram_figure, save_png
from lfcc_gmm.report import SystemScores, compare_systems, load_systems, write_report
from lfcc_gmm.scorefiles import LabelledScores, write_scores

ATTACKS = ("A01", "A02", "A03", "A04")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _system(strong: tuple[str, ...], n: int = 300, seed: int = 0) -> SystemScores:
    """Bona fide around 2; spoofs of the ``strong`` attacks (well detected) around -2, the others around 1."""
    rng = np.random.default_rng(seed)
    keys = np.repeat(["bonafide", "spoof"], [n, n * len(ATTACKS)])
    attacks = np.repeat(["-", *ATTACKS], n)
    mean = np.where(keys == "bonafide", 2.0, np.where(np.isin(attacks, strong), -2.0, 1.0))
    return SystemScores(rng.normal(mean, 1.0), keys, attacks)


@pytest.fixture(scope="module")
def systems() -> dict[str, SystemScores]:
    return {"lfcc": _system(("A01", "A02"), seed=1), "rawnet": _system(("A03", "A04"), seed=2)}


def test_comparison_values_are_evaluates(systems):
    comparison = compare_systems(systems, seen_attacks=["A01", "A02"])
    data = comparison.to_dict()
    assert [s["name"] for s in data["systems"]] == ["lfcc", "rawnet"]
    for entry, (name, system) in zip(data["systems"], systems.items(), strict=True):
        expected = evaluate(system.scores, system.keys, system.attacks)
        assert comparison.evaluations[name] == expected
        assert {k: entry[k] for k in expected.to_dict()} == expected.to_dict()
        bona = system.keys == "bonafide"
        for group, chosen in (("seen", ("A01", "A02")), ("unseen", ("A03", "A04"))):
            spoof = system.scores[~bona & np.isin(system.attacks, chosen)]
            assert entry[f"{group}_eer_percent"] == 100 * compute_eer(system.scores[bona], spoof)[0]
    lfcc, rawnet = (data["systems"][i]["per_attack_eer_percent"] for i in (0, 1))
    # Each system detects its strong attacks far better than the others.
    assert max(lfcc["A01"], lfcc["A02"]) < 5 < 20 < min(lfcc["A03"], lfcc["A04"])
    assert max(rawnet["A03"], rawnet["A04"]) < 5 < 20 < min(rawnet["A01"], rawnet["A02"])
    text_rows = comparison.to_text().splitlines()
    assert text_rows[2].split()[:2] == ["lfcc", f"{100 * comparison.evaluations['lfcc'].eer:.4f}"]


def test_seen_and_unseen_marks(systems):
    marked = compare_systems(systems, seen_attacks={"A01", "A02", "A99"})
    assert [a["status"] for a in marked.to_dict()["attacks"]] == ["seen", "seen", "unseen", "unseen"]
    assert marked.to_dict()["seen_attacks"] == ["A01", "A02", "A99"]
    header, marks = marked.to_text().splitlines()[:2]
    assert header.split()[-4:] == list(ATTACKS) and marks.split()[-4:] == ["seen", "seen", "unseen", "unseen"]
    assert "| A02 (seen) | A03 (unseen) |" in marked.to_markdown()

    plain = compare_systems(systems)
    assert [a["status"] for a in plain.to_dict()["attacks"]] == [None] * 4
    assert "unseen" not in plain.to_text() and "seen EER" not in plain.to_markdown()
    assert plain.to_text().splitlines()[1].startswith("lfcc ")  # no marks row


def test_hand_computed_table_with_an_absent_attack():
    # As the official code walks [-1 s, 0.5 b, 1 s, 2 b]: EER 50 %; A01 alone 75 %, A02 alone 0 % (see test_cli).
    hand = (np.array([2.0, 0.5, 1.0, -1.0]), ["bonafide", "bonafide", "spoof", "spoof"], ["-", "-", "A01", "A02"])
    other = (np.array([1.0, 0.0]), ["bonafide", "spoof"], ["-", "A01"])
    comparison = compare_systems({"hand": hand, "other": other})
    assert comparison.attacks == ["A01", "A02"]
    rows = comparison.to_text().splitlines()
    assert rows[1].split()[0] == "hand" and rows[1].split()[1] == "50.0000"
    assert rows[1].split()[-2:] == ["75.0000", "0.0000"]
    assert rows[2].split()[1] == "0.0000" and rows[2].split()[-2:] == ["0.0000", "n/a"]
    table = list(csv.reader(io.StringIO(comparison.to_csv())))
    assert table[0][0] == "system" and table[0][-2:] == ["A01", "A02"]
    assert [float(v) for v in table[1][-2:]] == [75.0, 0.0] and table[2][-1] == ""
    assert comparison.to_dict()["systems"][1]["per_attack_eer_percent"] == {"A01": 0.0}
    assert "| other | 0.0000 |" in comparison.to_markdown()


def test_bad_systems_are_named():
    with pytest.raises(ValueError, match="system 'one-class'.*no spoof trials"):
        compare_systems({"one-class": (np.array([1.0, 2.0]), ["bonafide", "bonafide"])})
    with pytest.raises(TypeError, match="scores, keys"):
        compare_systems({"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="no systems"):
        compare_systems({})


def _is_png(path) -> np.ndarray:
    from matplotlib.image import imread

    raw = path.read_bytes()
    assert raw.startswith(PNG_MAGIC) and len(raw) > 5000
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    assert image.std() > 0.01  # something is drawn
    return image


def test_det_plot_data_and_eer_markers(systems):
    figure = det_figure(systems)
    lines = {line.get_gid(): line for line in figure.axes[0].get_lines() if line.get_gid()}
    assert set(lines) == {"det:lfcc", "det:rawnet", "eer:lfcc", "eer:rawnet"}
    for name, system in systems.items():
        bona, spoof = system.scores[system.keys == "bonafide"], system.scores[system.keys == "spoof"]
        x, y = det_points(bona, spoof)
        np.testing.assert_array_equal(lines[f"det:{name}"].get_xdata(), x)
        np.testing.assert_array_equal(lines[f"det:{name}"].get_ydata(), y)
        eer = evaluate(system.scores, system.keys).eer
        marker = lines[f"eer:{name}"]
        assert list(marker.get_xdata()) == list(marker.get_ydata()) == [pytest.approx(ndtri(eer), abs=1e-12)]
        # The marker sits where the curve crosses the diagonal: within a DET step of a curve point.
        assert np.min(np.hypot(x - ndtri(eer), y - ndtri(eer))) < 0.05
        assert f"{name} (EER {100 * eer:.2f} %)" in [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    ticks = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert "1" in ticks and "10" in ticks  # error rates in %, not probits


def test_perfect_system_has_no_eer_marker():
    perfect = (np.array([3.0, 2.0, -1.0, -2.0]), ["bonafide", "bonafide", "spoof", "spoof"])
    curve = det_curves({"perfect": SystemScores(*map(np.asarray, perfect))})["perfect"]
    assert curve.eer == 0.0 and curve.eer_probit == -np.inf
    gids = {line.get_gid() for line in det_figure({"perfect": SystemScores(*map(np.asarray, perfect))}).axes[0].lines}
    assert "det:perfect" in gids and "eer:perfect" not in gids


def test_histograms_split_by_attack(systems):
    def labels(figure):
        return [[t.get_text().split(" ")[0] for t in axes.get_legend().get_texts()] for axes in figure.axes]

    assert labels(histogram_figure(systems)) == [["bona", "spoof", "EER"]] * 2
    assert labels(histogram_figure(systems, by_attack=True)) == [["bona", *ATTACKS, "EER"]] * 2
    figure = histogram_figure(systems)
    threshold = compute_eer(systems["lfcc"].scores[:300], systems["lfcc"].scores[300:])[1]
    assert [line.get_xdata()[0] for line in figure.axes[0].lines] == [threshold]


def test_pngs_are_valid_deterministic_and_differ_by_input(systems, tmp_path):
    first = save_png(det_figure(systems), tmp_path / "a.png")
    again = save_png(det_figure(systems), tmp_path / "b.png")
    other = save_png(det_figure({"lfcc": _system(("A01",), seed=3)}), tmp_path / "c.png")
    for path in (first, other):
        _is_png(path)
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "c.png"]  # no temporary left over


def test_write_report_folder(systems, tmp_path):
    comparison = compare_systems(systems, seen_attacks=["A01", "A02"])
    report = write_report(tmp_path / "out", comparison, systems, title="Demo systems", notes="Synthetic scores.")
    assert report == tmp_path / "out" / "report.md"
    names = {p.name for p in report.parent.iterdir()}
    assert names == {"report.md", "det.png", "histograms.png", "histograms_by_attack.png",
                     "comparison.json", "comparison.csv"}
    for png in ("det.png", "histograms.png", "histograms_by_attack.png"):
        _is_png(report.parent / png)
    text = report.read_text()
    assert text.startswith("# Demo systems\n\nSynthetic scores.")
    for png in ("det.png", "histograms.png", "histograms_by_attack.png"):
        assert f"]({png})" in text
    assert comparison.to_markdown() in text
    assert "### lfcc" in text and "### rawnet" in text and "## How to read this" in text
    assert "higher for more bona fide" in text
    assert json.loads((report.parent / "comparison.json").read_text()) == comparison.to_dict()
    assert (report.parent / "comparison.csv").read_text() == comparison.to_csv()
    with pytest.raises(ValueError, match="not those compared"):
        write_report(tmp_path / "bad", comparison, {"lfcc": systems["lfcc"]})


def test_load_systems_names_and_errors(systems, tmp_path):
    paths = []
    for name, system in systems.items():
        paths.append(tmp_path / f"{name}.txt")
        write_scores(paths[-1], [f"T{i:04d}" for i in range(system.scores.size)], system.scores,
                     list(system.attacks), list(system.keys))
    loaded = load_systems(paths)
    assert list(loaded) == ["lfcc", "rawnet"]
    np.testing.assert_array_equal(loaded["lfcc"].scores, systems["lfcc"].scores)
    assert list(load_systems(paths, names=["A", "B"])) == ["A", "B"]
    with pytest.raises(ValueError, match="'same' is given to both"):
        load_systems(paths, names=["same", "same"])
    with pytest.raises(ValueError, match="1 system names for 2"):
        load_systems(paths, names=["one"])


def test_plotting_modules_do_not_import_matplotlib():
    code = ("import sys, lfcc_gmm.report, lfcc_gmm.plots, cli.reporting;"
            "assert 'matplotlib' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def _cli(*args: str):
    return CliRunner().invoke(AntispoofGroup(commands=[compare]), ["compare", *args])


@pytest.fixture
def two_column_files(systems, tmp_path):
    """The two systems as 2-column files (shuffled differently) plus eval and train protocols."""
    n = systems["lfcc"].scores.size
    ids = [f"E{i:04d}" for i in range(n)]
    keys, attacks = systems["lfcc"].keys, systems["lfcc"].attacks
    (tmp_path / "eval.txt").write_text("".join(f"S {i} - {a} {k}\n" for i, a, k in zip(ids, attacks, keys,
                                                                                           strict=True)))
    (tmp_path / "train.txt").write_text("S T1 - A01 spoof\nS T2 - A02 spoof\nS T3 - - bonafide\n")
    paths = []
    for seed, (name, system) in enumerate(systems.items()):
        order = np.random.default_rng(seed).permutation(n)
        paths.append(tmp_path / f"{name}.eval.txt")
        write_scores(paths[-1], [ids[i] for i in order], system.scores[order])
    return paths


def test_compare_command(systems, two_column_files, tmp_path):
    out = tmp_path / "report"
    args = [*map(str, two_column_files), "--protocol", str(tmp_path / "eval.txt"), "--names", "LFCC,RawNet",
            "--train-protocol", str(tmp_path / "train.txt"), "-o", str(out)]
    result = _cli(*args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    expected = compare_systems({"LFCC": systems["lfcc"], "RawNet": systems["rawnet"]}, ["A01", "A02"]).to_dict()
    assert data.pop("report") == str(out / "report.md")
    assert data == expected
    assert {p.name for p in out.iterdir()} >= {"report.md", "det.png", "histograms.png", "comparison.json"}
    assert json.loads((out / "comparison.json").read_text()) == expected


def test_compare_errors(two_column_files, tmp_path):
    files = list(map(str, two_column_files))
    protocol = ["--protocol", str(tmp_path / "eval.txt")]
    out = ["-o", str(tmp_path / "r")]
    assert _cli(*files, *out).exit_code == 1  # 2-column files without a protocol
    assert _cli(*files, *protocol, "--names", "only-one", *out).exit_code == 2
    both = _cli(*files, *protocol, "--seen-attacks", "A01", "--train-protocol", str(tmp_path / "eval.txt"), *out)
    assert both.exit_code == 2 and "not both" in both.output
    assert _cli(*files, *protocol).exit_code == 2  # no -o
    short = tmp_path / "short.txt"
    short.write_text("".join(two_column_files[0].read_text().splitlines(keepends=True)[:-3]) + "X9999 0.5\n")
    result = _cli(*files, str(short), *protocol, *out)
    assert result.exit_code == 1
    assert f"{short}: 1 of 1498 scored IDs are not in the protocol: X9999" in result.output
    assert "3 of 1500 protocol IDs have no score" in result.output


def test_compare_ci_bounds_each_system_and_each_pair(systems, two_column_files, tmp_path):
    # The files list the trials in different orders; the intervals are those of the trials in ID order, which here
    # is the systems' own order.
    out = tmp_path / "report"
    args = [*map(str, two_column_files), "--protocol", str(tmp_path / "eval.txt"), "--names", "LFCC,RawNet",
            "-o", str(out), "--ci", "0.9", "--resamples", "80", "--seed", "4"]
    result = _cli(*args, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    lfcc, rawnet = systems["lfcc"], systems["rawnet"]
    settings = {"prior": 0.5, "confidence": 0.9, "n_resamples": 80, "seed": 4}
    for entry, system in zip(data["systems"], (lfcc, rawnet), strict=True):
        expected = bootstrap_ci(system.scores, system.keys, **settings).to_dict()
        assert entry["bootstrap"] == {**expected, "resampling": "the protocol names one speaker"}
    (pair,) = data["differences"]
    expected = paired_bootstrap(lfcc.scores, rawnet.scores, lfcc.keys, **settings).to_dict()
    assert pair == {"a": "LFCC", "b": "RawNet", **expected, "resampling": "the protocol names one speaker"}
    report = (out / "report.md").read_text()
    assert "| LFCC − RawNet | EER % |" in report and "**Paired differences**" in report

    text = _cli(*args).output
    verdict = "significant" if pair["eer_percent"]["significant"] else "not significant"
    assert f"  LFCC − RawNet  EER %     {pair['eer_percent']['estimate']:+10.4f}" in text and verdict in text


def test_compare_ci_of_the_same_ranking_differs_by_nothing():
    rng = np.random.default_rng(3)
    keys = np.where(rng.random(200) < 0.4, "bonafide", "spoof")
    scores = np.where(keys == "bonafide", 1.0, -1.0) + rng.normal(0, 1, 200)
    ids = [f"T{i:03d}" for i in range(200)]
    order = rng.permutation(200)
    systems = {"raw": LabelledScores(ids, scores, keys, np.full(200, "-")),
               # Calibrated (an increasing affine map), its trials listed in another order.
               "calibrated": LabelledScores([ids[i] for i in order], 0.5 * scores[order] - 3, keys[order],
                                            np.full(200, "-"))}
    comparison = compare_systems(systems, confidence=0.95, n_resamples=50)
    (paired,) = comparison.differences.values()
    assert all(i.estimate == i.low == i.high == 0.0 for i in paired.differences.values())
    assert paired.significant == {"eer_percent": False, "min_dcf": False}
    assert comparison.intervals["raw"] == comparison.intervals["calibrated"]


def test_compare_ci_needs_the_same_trials():
    keys = np.array(["bonafide", "spoof", "bonafide", "spoof"])
    scores = np.array([1.0, 0.0, 2.0, -1.0])
    a = LabelledScores(["a", "b", "c", "d"], scores, keys, np.full(4, "-"))
    b = LabelledScores(["a", "b", "c", "e"], scores, keys, np.full(4, "-"))
    with pytest.raises(ValueError, match=r"system 'B': 1 of 4 trials of 'A' are missing: d"):
        compare_systems({"A": a, "B": b}, confidence=0.9)
    flipped = LabelledScores(["a", "b", "c", "d"], scores, keys[[1, 0, 2, 3]], np.full(4, "-"))
    with pytest.raises(ValueError, match=r"system 'B': 2 of 4 trials have another key than in 'A': a, b"):
        compare_systems({"A": a, "B": flipped}, confidence=0.9)
    with pytest.raises(ValueError, match="other trials than 'A'"):
        compare_systems({"A": (scores, keys), "B": (scores[:3], keys[:3])}, confidence=0.9)


def test_compare_rawgat_reference(reference_dir, tmp_path):
    scores = reference_dir / "metrics" / "rawgat_st_add.eval.scores.txt"
    if not scores.is_file():
        pytest.skip(f"RawGAT-ST reference scores not found at {scores}")
    out = tmp_path / "r"
    result = _cli(str(scores), "--seen-attacks", "A16,A19", "-o", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:2] == ["system", "EER"] and lines[1].split()[-4:] == ["seen", "unseen", "unseen", "seen"]
    assert lines[2].split()[:2] == ["rawgat_st_add.eval.scores", "1.1586"]
    assert lines[-1] == f"Report: {out / 'report.md'}"
    (system,) = json.loads((out / "comparison.json").read_text())["systems"]
    assert system["eer_percent"] == pytest.approx(1.1585964783684808, rel=1e-12)
    official = json.loads((reference_dir / "metrics" / "official.rawgat_st_add.eval.json").read_text())
    assert system["eer_percent"] == pytest.approx(official["eer_cm_percent"], rel=1e-9)
    assert system["per_attack_eer_percent"] == pytest.approx(official["eer_per_attack_percent"], rel=1e-9)
