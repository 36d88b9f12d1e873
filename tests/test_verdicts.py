"""The result of a file: verdict rules, the JSON object others read, and the text, JSON and CSV renderings."""

from __future__ import annotations

import csv
import io
import json

import jsonschema
import pytest

from lfcc_gmm.segments import Segment
from lfcc_gmm.verdicts import (
    CSV_FIELDS,
    RESULT_FIELDS,
    RESULT_SCHEMA,
    FileResult,
    ResultWriter,
    Threshold,
    decide,
    write_results,
)

GOOD = FileResult(file="clips/a b.wav", scorer="aasist", verdict="spoof", score=-4.25, threshold=-1.5,
                  mode="whole file", duration_s=7.7, speech_s=2.6,
                  warnings=("a long stretch without speech: 5.00 s (0.00-5.00 s, 65 % of the file)",),
                  segments=(Segment(0.0, 4.0375, 1.5), Segment(2.01875, 6.05625, -3.0), Segment(3.6625, 7.7, -6.0)),
                  threshold_meaning="the EER point on the demo dev split")
FAILED = FileResult(file="broken.wav", scorer="aasist", error="not a readable audio file or corrupt (...)")


def test_the_verdict_rules():
    assert decide(0.0, 0.0, no_speech=False) == "bona fide"  # at the threshold: bona fide
    assert decide(-1e-9, 0.0, no_speech=False) == "spoof"
    assert decide(50.0, 0.0, no_speech=True) == "no speech"  # whatever the score
    assert decide(-50.0, None, no_speech=True) == "no speech"
    assert decide(1.0, None, no_speech=False) is None
    with pytest.raises(ValueError, match="finite"):
        Threshold(float("nan"), "x")


def test_the_json_object_has_exactly_the_published_fields():
    assert RESULT_FIELDS == ("file", "scorer", "verdict", "score", "threshold", "mode", "duration_s", "speech_s",
                             "warnings", "segments")
    good = GOOD.to_dict()
    assert tuple(good) == RESULT_FIELDS
    assert good["segments"][1] == {"start_s": 2.01875, "end_s": 6.05625, "score": -3.0}
    failed = FAILED.to_dict()
    assert tuple(failed) == (*RESULT_FIELDS, "error") and failed["verdict"] is None and failed["segments"] == []
    for obj in (good, failed):
        jsonschema.validate(obj, RESULT_SCHEMA)  # what the schema promises a reader
        assert FileResult.from_dict(json.loads(json.dumps(obj))) == FileResult.from_dict(obj)
    assert FileResult.from_dict(good) == GOOD  # the threshold's meaning is text, not part of the object
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "verdict": "fake"}, RESULT_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "extra": 1}, RESULT_SCHEMA)
    with pytest.raises(ValueError, match="unknown field"):
        FileResult.from_dict({**good, "extra": 1})


def test_text_says_what_the_threshold_means():
    lines = GOOD.to_text().splitlines()
    assert lines[0] == ("clips/a b.wav: spoof (score -4.2500 below the threshold -1.5, the EER point on the demo dev "
                        "split; whole file, 7.70 s, 2.60 s of speech)")
    assert lines[1] == "  warning: a long stretch without speech: 5.00 s (0.00-5.00 s, 65 % of the file)"
    assert lines[2] == "  3 segments; the lowest scores -6.0000 (3.66-7.70 s)"
    silent = FileResult("s.wav", "lfcc-gmm", "no speech", 13.2, 0.0, "whole file", 3.0, 0.0)
    assert silent.to_text() == "s.wav: no speech (score 13.2000 not used; whole file, 3.00 s, 0.00 s of speech)"
    assert FAILED.to_text() == "broken.wav: FAILED (not a readable audio file or corrupt (...))"


def test_writers_stream_json_csv_and_text():
    stream = io.StringIO()
    writer = write_results([GOOD, FAILED], stream, "json")
    assert (writer.written, writer.failed) == (2, 1)
    assert json.loads(stream.getvalue()) == [GOOD.to_dict(), FAILED.to_dict()]
    assert len(stream.getvalue().splitlines()) == 4  # "[", one object per line, "]"
    empty = io.StringIO()
    write_results([], empty, "json")
    assert json.loads(empty.getvalue()) == []
    table = io.StringIO()
    write_results([GOOD, FAILED], table, "csv")
    rows = list(csv.DictReader(io.StringIO(table.getvalue())))
    assert tuple(rows[0]) == CSV_FIELDS
    assert float(rows[0]["score"]) == GOOD.score and json.loads(rows[0]["segments"])[2]["score"] == -6.0
    assert json.loads(rows[0]["warnings"]) == list(GOOD.warnings) and rows[0]["error"] == ""
    assert rows[1]["error"] == FAILED.error and rows[1]["score"] == ""
    text = io.StringIO()
    write_results([GOOD, FAILED], text, "text")
    assert text.getvalue() == GOOD.to_text() + "\n" + FAILED.to_text() + "\n"
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        ResultWriter(io.StringIO(), "xml")
