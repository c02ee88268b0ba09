"""Bounded fuzzing of the importers and the checkpoint loader (the long run: `python -m bench.fuzz`).

Hypothesis generates hostile labelme, COCO, VOC and mask-folder datasets and checkpoint /
resume payloads (`bench.fuzz_cases`); each case runs the real preview + import, or the real
loader. The rule: success or a `SegStudioError`; any other exception fails the test, with the
shrunk case in the report. A fixed seed and no example database keep CI reproducible; the number
of cases per target is small so the whole file stays well under a minute on the CI machine.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, seed, settings

from bench.fuzz_cases import TARGETS, run_case

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning", "ignore::RuntimeWarning"),
]

#: cases per target in CI (about 4-5 s each target on the 2-core CI machine)
CASES = {"labelme": 40, "coco": 40, "voc": 30, "masks": 40, "checkpoint": 60, "resume": 60}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_hostile_inputs_raise_only_our_error(target):
    @settings(
        max_examples=CASES[target], deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @seed(20261206)
    @given(TARGETS[target][0])
    def one(case):
        run_case(target, case)

    one()
