"""The teaching notebooks run top to bottom headless, their own checks included, are stored without outputs, and
their rendered copies in docs/notebooks/ are current.

Each notebook asserts what its prose claims (the LFCC walkthrough its hand-composed LFCC against ``lfcc()``, its
by-hand scores against the scorer and its EER against the definition; the deep-models and explanations notebooks
their filter banks, block outputs, window scores and attributions against the library; the evaluation notebook its
by-hand DET, EER and costs against the library and the official results on the shared real scores), so executing
them is a test of the toolkit as much as of the notebooks.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from conftest import REFERENCE_DIR

from cli.demo import DEMO_CORPUS

nbformat = pytest.importorskip("nbformat")

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
WALKTHROUGH = REPO_ROOT / "notebooks" / "lfcc_gmm_walkthrough.ipynb"
EVALUATION = REPO_ROOT / "notebooks" / "evaluation_walkthrough.ipynb"
# What the evaluation notebook prints once its checks against the official results ran, or why they did not.
REFERENCE_CHECKED = "equal the official results"
REFERENCE_SKIPPED = "Skipping the checks against the official results"

_spec = importlib.util.spec_from_file_location("render_notebooks", REPO_ROOT / "docs" / "render_notebooks.py")
assert _spec is not None and _spec.loader is not None
render_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render_notebooks)


def _stored(notebook: Path = WALKTHROUGH):
    return nbformat.read(notebook, as_version=4)


def _execute(tmp_path: Path, notebook: Path = WALKTHROUGH):
    """Run the stored notebook in notebooks/ (as a user would); any cell error fails with its traceback."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    if not (DEMO_CORPUS / "protocols").is_dir() or not (DEMO_CORPUS / "flac").is_dir():
        pytest.skip(f"demo corpus not found at {DEMO_CORPUS}")
    return render_notebooks.execute(notebook, tmp_path / "kernels")


def _text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/markdown", ""))
    return "".join(parts)


def _check_every_figure_shown(nb) -> None:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or REFERENCE_SKIPPED in _text(cell):
            continue  # a cell that skipped its work for want of the reference files draws nothing
        n_plots = cell.source.count("plt.show()") + cell.source.count("_figure(")
        n_images = sum("image/png" in output.get("data", {}) for output in cell.outputs)
        assert n_images == n_plots, f"cell {index} should show {n_plots} figure(s), showed {n_images}"


def test_the_course_has_its_notebooks():
    names = {path.stem for path in NOTEBOOKS}
    assert {"lfcc_gmm_walkthrough", "deep_models_walkthrough", "explanations", "evaluation_walkthrough"} <= names


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_stored_notebook_has_no_outputs(notebook):
    nb = _stored(notebook)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code cells"
    for index, cell in enumerate(code):
        assert cell.outputs == [], f"code cell {index} is stored with outputs: strip them before committing"
        assert cell.execution_count is None, f"code cell {index} is stored with an execution count"
    assert nb.metadata.kernelspec.name == "python3"
    # Paths of one machine would break the notebook everywhere else.
    assert not [cell.source for cell in nb.cells if "/work/" in cell.source or "/home/" in cell.source]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_rendered_copy_is_current(notebook):
    rendered = render_notebooks.rendered_path(notebook)
    assert rendered.is_file(), f"{rendered} is missing: run `make docs`"
    stored = render_notebooks.source_hash(_stored(notebook))
    assert render_notebooks.rendered_hash(rendered) == stored, (
        f"{rendered} was rendered from another version of {notebook.name}: run `make docs`"
    )
    text = rendered.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert images, f"{rendered} shows no figure"
    missing = [image for image in images if not (rendered.parent / image).is_file()]
    assert not missing, f"{rendered} links to missing figures {missing[:3]}"
    assert "Traceback (most recent call last)" not in text


def test_source_hash_ignores_outputs_but_not_sources():
    nb = _stored()
    before = render_notebooks.source_hash(nb)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hello")]
    nb.cells[1].execution_count = 3
    assert render_notebooks.source_hash(nb) == before
    nb.cells[1].source += "\n# an edit"
    assert render_notebooks.source_hash(nb) != before


@pytest.mark.parametrize("notebook", [path for path in NOTEBOOKS if path != WALKTHROUGH], ids=lambda path: path.stem)
@pytest.mark.slow
def test_course_notebook_runs(tmp_path, notebook):
    nb = _execute(tmp_path, notebook)
    _check_every_figure_shown(nb)
    text = "".join(_text(cell) for cell in nb.cells if cell.cell_type == "code")
    assert "All checks of this notebook passed" in text
    if notebook == EVALUATION:
        # With the shared reference files present their checks must have run, not been skipped.
        expected, absent = ((REFERENCE_CHECKED, REFERENCE_SKIPPED) if REFERENCE_DIR.is_dir()
                            else (REFERENCE_SKIPPED, REFERENCE_CHECKED))
        assert expected in text and absent not in text


@pytest.mark.slow
def test_notebook_runs(tmp_path):
    nb = _execute(tmp_path)
    _check_every_figure_shown(nb)
    text = "".join(_text(cell) for cell in nb.cells if cell.cell_type == "code")
    for preset in ("asvspoof2019", "asvspoof2021"):
        assert f"{preset}: lfcc_by_hand == lfcc()" in text
    # The bundled AASIST weights are always there: the comparison ends with a table of both systems.
    assert "| AASIST (pretrained, ASVspoof 2019) |" in text
    assert "| LFCC-GMM |" in text
    assert "the same scores" in text  # the noise cell matched `antispoof robustness`
