"""Every command turns an exception nobody expected into one paragraph, a logged traceback and exit 2.

The faults are injected at a *random internal call*: a trace function counts the calls into
SegStudio's own modules while a real command runs on a real project and raises at call number N
(N drawn per command from a seeded generator, so a failure names a reproducible N). Wherever the
fault lands, the command must end with 0, 1 or 2 (never a traceback on stderr), and when it ends
with 2 because of the injected fault, the traceback must be in the log file.
"""

from __future__ import annotations

import errno
import random
import sys
from pathlib import Path

import cv2
import pytest
import torch  # imported here, not under the trace: an import is not what these faults test
import torchvision.models.segmentation  # noqa: F401  (the same: heavy imports stay out of the trace)

from segstudio.cli import COMMANDS, main
from segstudio.core.logs import LOG_FILE
from segstudio.core.project import Project, Status
from segstudio.core.schemes import LabelScheme
from segstudio.ml.synthetic import make_shapes_dataset, shapes_scheme_dict

ARCH = "lraspp_mobilenet_v3_large"
TRAIN = [
    "--epochs",
    "1",
    "--crop",
    "32",
    "--batch",
    "2",
    "--workers",
    "0",
    "--min-iters",
    "1",
    "--device",
    "cpu",
]
#: frames of these modules are the harness itself (the handler must not be the one that fails)
_EXEMPT = ("segstudio.cli", "segstudio.commands.unexpected", "segstudio.core.logs")


class Injected(Exception):
    """Marks the faults of this test in the log."""


FAULTS = [
    lambda: RuntimeError("injected runtime fault"),
    lambda: KeyError("injected_key"),
    lambda: OSError(errno.ENAMETOOLONG, "File name too long", "x" * 300),
    lambda: ValueError("injected value fault"),
    lambda: TypeError("injected type fault"),
    lambda: IndexError("injected index fault"),
    lambda: AttributeError("injected attribute fault"),
]


class CallFault:
    """sys.settrace hook raising `fault()` at the n-th call into a SegStudio module (0 = only count)."""

    def __init__(self, n: int, fault) -> None:
        self.n, self.fault, self.calls, self.fired = n, fault, 0, None

    def __call__(self, frame, event, arg):
        if event != "call":
            return None
        name = frame.f_globals.get("__name__", "")
        if not name.startswith("segstudio.") or name.startswith(_EXEMPT):
            return None
        self.calls += 1
        if self.n and self.calls == self.n and self.fired is None:
            self.fired = f"{name}.{frame.f_code.co_name}"
            sys.settrace(None)
            raise self.fault()
        return None


def _run(argv: list[str], tracer: CallFault) -> int:
    sys.settrace(tracer)
    try:
        return main(argv)
    finally:
        sys.settrace(None)


@pytest.fixture
def world(tmp_path, monkeypatch, one_torch_thread):
    """A project of 8 generated images (7 done) and a mask-folder export of it."""
    assert torch.get_num_threads() == 1
    monkeypatch.setenv("SEGSTUDIO_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    folder = tmp_path / "photos"
    folder.mkdir()
    images, masks = make_shapes_dataset(8, 40, seed=3)
    for index, image in enumerate(images):
        cv2.imwrite(str(folder / f"img{index:02d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    with Project.open(folder, scheme=LabelScheme.from_dict(shapes_scheme_dict())) as project:
        project.set_setting("val_fraction", 0.3)
        for rec in project.images()[:7]:
            project.save_mask(rec, masks[int(rec.rel_path[3:5])], status=Status.DONE)
    assert (
        main(["export", str(folder), "--format", "masks", "--out", str(tmp_path / "export"), "--quiet"]) == 0
    )
    return tmp_path


def _argv(command: str, root: Path, attempt: int) -> list[str]:
    folder, out = str(root / "photos"), str(root / f"out{attempt}")
    return {
        "info": ["info", folder],
        "predict": ["predict", folder, "--weights", "none", "--model", ARCH, "--device", "cpu", "--quiet"],
        "export": ["export", folder, "--format", "voc", "--out", out, "--quiet"],
        "import": ["import", "masks", str(root / "export"), "--out", out, "--quiet"],
        "train": ["train", folder, "--base", "scratch", "--arch", ARCH, *TRAIN],
        "eval": ["eval", folder, "--device", "cpu"],
        "crf": ["crf", folder, "--json"],
        "repair": ["repair", folder],
        "team": ["team", "init-server", "--db", "postgresql://postgres@127.0.0.1:9/postgres", "--print-only"],
    }[command]


CLI_COMMANDS = [c for c in COMMANDS if c != "gui"]  # the window's own hook is tested in tests/gui


@pytest.mark.parametrize("command", CLI_COMMANDS)
def test_a_fault_at_a_random_internal_call_never_shows_a_traceback(world, command, capsys):
    counter = CallFault(0, None)
    clean = _run(_argv(command, world, 0), counter)
    out = capsys.readouterr()
    # eval: no model version yet; repair: nothing to repair (each a clean refusal or a plain 0)
    assert clean in ((0, 2) if command in ("eval", "repair") else (0,)), out.err
    assert counter.calls > 0, f"{command} made no call into segstudio"
    rng = random.Random(f"fault-{command}")
    draws = sorted({1, counter.calls, *(rng.randint(1, counter.calls) for _ in range(3))})
    fired = 0
    for attempt, n in enumerate(draws, start=1):
        fault = rng.choice(FAULTS)
        tracer = CallFault(n, fault)
        code = _run(_argv(command, world, attempt), tracer)
        err = capsys.readouterr().err
        where = f"{command}, fault {fault().__class__.__name__} at call {n} ({tracer.fired})"
        assert "Traceback" not in err, where + "\n" + err
        assert code in (0, 1, 2), where + "\n" + err
        if code == 2 and "unexpected problem" in err:
            fired += 1
            assert len(err.strip().splitlines()) <= 3, where + "\n" + err  # one paragraph, not a dump
            assert "Traceback" in (world / "logs" / LOG_FILE).read_text(encoding="utf-8"), where
    assert fired >= 1, f"{command}: no injected fault reached the command's handler ({draws})"


def test_the_paragraph_names_the_input_and_the_log(world, monkeypatch, capsys):
    import segstudio.commands.info as info

    def broken(args):
        raise OSError(errno.ENAMETOOLONG, "File name too long", "y" * 300)

    monkeypatch.setattr(info, "run", broken)
    assert main(["info", str(world / "photos")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(world / "photos") in err
    assert "longer than the file system allows" in err and str(world / "logs" / LOG_FILE) in err
    logged = (world / "logs" / LOG_FILE).read_text(encoding="utf-8")
    assert "Traceback" in logged and "File name too long" in logged


def test_the_gui_command_reports_a_failed_start_the_same_way(world, monkeypatch, capsys):
    import segstudio.gui.app as app

    def broken(*args, **kwargs):
        raise RuntimeError("injected: the window could not be built")

    monkeypatch.setattr(app, "run_app", broken)
    assert main(["gui", str(world / "photos")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "the window could not be built" in err
