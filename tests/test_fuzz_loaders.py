"""Property-based tests of the capture loaders (hypothesis): whatever the bytes or the JSON,
loading either works or raises the loaders' own clear errors (CaptureError, ImageReadError),
never anything else. The generators and checks are those of benchmarks/fuzz_loaders.py,
which runs them for minutes; here a few hundred inputs, well under a minute."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fuzz_loaders as fz  # noqa: E402

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _quiet_skips():
    logging.disable(logging.WARNING)  # every skipped frame is logged; thousands here
    yield
    logging.disable(logging.NOTSET)


@FUZZ
@given(fz.image_data())
def test_image_bytes_load_or_fail_cleanly(data):
    fz.check_image(*data)


@FUZZ
@given(fz.transforms_meta(), st.booleans())
def test_transforms_json_loads_or_fails_cleanly(meta, blender):
    fz.check_transforms(meta, blender)


@FUZZ
@given(fz.pose_meta())
def test_random_poses_and_intrinsics_load_or_fail_cleanly(meta):
    fz.check_transforms(meta)


def test_benchmark_counts_inputs_and_failures(capsys):
    assert fz.main(["--seconds", "3", "--targets", "poses"]) == 0
    import json

    out = json.loads(capsys.readouterr().out.strip())
    assert out["benchmark"] == "fuzz_loaders" and out["inputs_tried"] > 0
    assert out["failures"] == 0, out["failure_kinds"]
