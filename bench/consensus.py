"""Consensus on real street scenes: what the agreement report says and what it costs.

Run: `.venv/bin/python -m bench.consensus [--shift 2] [--runs 5] [--json]`

Starts a throwaway PostgreSQL server (fsync on), makes a team project of the 24 CamVid frames in
/work/shared/testdata/camvid_sample (480x360, 11 classes, real ground truth), sends every frame to
consensus (alice and bob), and saves on the two branches: annotator A saves the ground truth, annotator B
the same ground truth with every boundary `--shift` pixels to the right (a synthetic but typical
disagreement: the same objects, outlined a little differently). Prints as JSON: the agreement per class
and the mIoU from `team report`, and the median time of the report over the whole project, with, as the
reference measured in the same run, the same agreement computed in memory from the 48 decoded masks (so
the difference is the server round trips and PNG decoding); and the report again once this machine has
cached the confusion matrix of each compared version pair (what `info --db` and later reports cost).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "camvid_sample"


def _shifted(mask: np.ndarray, shift: int) -> np.ndarray:
    out = mask.copy()
    if shift:
        out[:, shift:] = mask[:, :-shift]
    return out


def run(shift: int, runs: int) -> dict[str, object]:
    from PIL import Image

    from segstudio.core.project import Project, Status
    from segstudio.core.schemes import LabelScheme
    from segstudio.team.agreement import agreement_of, summarize
    from segstudio.team.local_server import start_local_server
    from segstudio.team.project import TeamProject
    from segstudio.team.schema import server_sql
    from segstudio.team.transfer import create_team_project

    if not (DATA / "images").is_dir():
        raise SystemExit(f"the CamVid sample is not at {DATA}; this benchmark needs /work/shared/testdata")
    server = start_local_server(fsync=True)
    work = Path(tempfile.mkdtemp(prefix="bench-consensus-"))
    try:
        folder = work / "images"
        shutil.copytree(DATA / "images", folder)
        passfile = work / "pgpass"
        members = {"lead": "segstudio_lead", "alice": "segstudio_annotator", "bob": "segstudio_annotator",
                   "rita": "segstudio_reviewer"}  # fmt: skip
        passfile.write_text("".join(f"127.0.0.1:{server.port}:*:{m}:pw-{m}\n" for m in members))
        passfile.chmod(0o600)
        os.environ["PGPASSFILE"] = str(passfile)
        with server.admin() as conn:
            conn.execute(server_sql())
            for member, group in members.items():
                conn.execute(f"CREATE ROLE {member} LOGIN PASSWORD 'pw-{member}' IN ROLE {group}")
            conn.execute("CREATE DATABASE bench OWNER segstudio_lead")
        scheme = LabelScheme.load(DATA / "scheme.json")
        Project.open(folder, state_dir=work / "local", scheme=scheme).close()
        create_team_project(folder, server.url("lead", "bench"), work / "local")

        def join(member: str) -> TeamProject:
            return TeamProject.join(
                folder, server.url(member, "bench"), state_dir=work / member, heartbeat=False
            )

        with join("lead") as lead:
            records = lead.images()
            lead.assign(records, ["alice", "bob"], "round-robin")
            lead.add_consensus(records, ["alice", "bob"], 1.0)
        truth = {r.rel_path: np.array(Image.open(DATA / "masks" / r.rel_path)) for r in records}
        pairs = []
        with join("alice") as alice, join("bob") as bob:
            for member, project in (("alice", alice), ("bob", bob)):
                for rec in project.images():
                    found = project.consensus_of(rec)
                    mask = truth[rec.rel_path]
                    if found.branch_of(member) == "B":
                        mask = _shifted(mask, shift)
                    project.load_mask(rec)
                    project.save_mask(rec, mask, Status.DONE)
        with join("rita") as rita:
            for rec in rita.images():
                found = rita.consensus_of(rec)
                a = (
                    truth[rec.rel_path]
                    if found.annotator_a == "alice"
                    else _shifted(truth[rec.rel_path], shift)
                )
                b = (
                    truth[rec.rel_path]
                    if found.annotator_b == "alice"
                    else _shifted(truth[rec.rel_path], shift)
                )
                pairs.append((found.annotator_a, found.annotator_b, a, b))
            (rita.state_dir / "consensus_agreement.json").unlink(missing_ok=True)
            started = time.perf_counter()
            rita.consensus_report()  # cold: every pair read and compared
            cold = time.perf_counter() - started
            report_times, memory_times, report = [], [], {}
            for _ in range(runs):
                (rita.state_dir / "consensus_agreement.json").unlink(missing_ok=True)
                started = time.perf_counter()
                report = rita.consensus_report()
                report_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                in_memory = summarize(
                    [(x, y, *agreement_of(a, b, scheme.names)) for x, y, a, b in pairs], scheme.names
                )
                memory_times.append(time.perf_counter() - started)
            warm = []
            for _ in range(runs):
                started = time.perf_counter()
                rita.consensus_report()  # the pairs compared before come from this machine's cache
                warm.append(time.perf_counter() - started)
        assert in_memory["per_class_iou"] == report["per_class_iou"], "the report and the reference differ"
        return {
            "bench": "consensus_report",
            "images": report["compared"],
            "image_size": "480x360",
            "shift_px": shift,
            "agreement_miou": report["miou"],
            "agreement_per_class_iou": report["per_class_iou"],
            "pairs": report["pairs"],
            "runs": runs,
            "report_first_s": round(cold, 3),
            "report_s_median": round(statistics.median(report_times), 3),
            "report_cached_s_median": round(statistics.median(warm), 3),
            "reference_in_memory_s_median": round(statistics.median(memory_times), 3),
            "cpu_cores": os.cpu_count(),
        }
    finally:
        server.remove()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shift", type=int, default=2, help="annotator B's boundaries, pixels to the right")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="one JSON object (default: indented JSON)")
    args = parser.parse_args(argv)
    result = run(args.shift, args.runs)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
