"""Consensus in a team project, as TeamProject methods: an image annotated by two members, compared,
then resolved by a reviewer.

How it is stored (schema `_CONSENSUS`): the image's row in `segstudio.consensus` names annotator A (its
assignee) and annotator B; each saves on their own branch of `mask_versions` ('A' or 'B'), starting from
the main version the image had when the lead set it up (the fork). The server keeps a head per branch
and refuses a stale branch save exactly as on the main line; only the branch's annotator may write it,
and an annotator cannot read the other branch until the image is resolved (blind consensus). Members
never choose a branch: `load_mask`/`save_mask` of an annotator of an open consensus image work on their
branch (`_my_branch`), everyone else sees the main line.

A reviewer who annotated neither branch resolves the image (`resolve_consensus`): take A, take B, or
merge (`agreement.merge_annotations`: agreement kept, disputed pixels left void to paint; optionally one
annotator trusted per class, `parse_class_choices`). That is a
normal new main version (parent: the main head) recording the two branch heads it was made from; the
server refuses it if either annotator saved again since. Then the branches close and the image is an
ordinary one, which the resolver may accept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.atomic import atomic_write_json
from segstudio.core.errors import ProjectError
from segstudio.core.store_records import IMAGE_COLUMNS, ImageRecord, Status, image_record, status_of
from segstudio.team import schema
from segstudio.team.agreement import Agreement, merge_annotations, pair_confusion, summarize
from segstudio.team.blobs import decode_png, encode_png
from segstudio.team.connection import require_driver
from segstudio.team.errors import StaleSaveError, TeamError, TeamPermissionError

__all__ = [
    "MY_BRANCH",
    "SEEN_COLUMNS",
    "WORK_HEAD",
    "Consensus",
    "ConsensusImage",
    "describe_choices",
    "parse_class_choices",
    "pick_consensus",
    "second_annotators",
    "seen_record",
]

TAKES = ("A", "B", "merge")
#: This machine's confusion matrices of compared version pairs (in the member's cache folder).
AGREEMENT_CACHE = "consensus_agreement.json"

#: SQL (one %s: the image id): the branch this member annotates on the image's open consensus, else NULL.
#: Part of the save's INSERT, so routing a save to its branch costs no extra round trip.
MY_BRANCH = (
    "(SELECT CASE WHEN c.annotator_a = current_user THEN 'A' ELSE 'B' END FROM segstudio.consensus c "
    "WHERE c.image_id = %s AND c.resolved_version IS NULL AND current_user IN (c.annotator_a, c.annotator_b))"
)
#: SQL over `segstudio.images i LEFT JOIN segstudio.consensus c ON c.image_id = i.id`: the version this
#: member works on (their branch's head on an open consensus image they annotate, else the main head).
WORK_HEAD = (
    "CASE WHEN c.resolved_version IS NULL AND c.annotator_a = current_user THEN c.head_a "
    "WHEN c.resolved_version IS NULL AND c.annotator_b = current_user THEN c.head_b ELSE i.mask_head END"
)
#: IMAGE_COLUMNS of `segstudio.images` plus the status of this member's own branch (NULL elsewhere): an
#: annotator of an open consensus image sees their branch's status (done on their branch is done for
#: them, whatever the other annotator does), read in the same query (`seen_record`).
SEEN_COLUMNS = (
    f"{IMAGE_COLUMNS}, (SELECT v.status FROM segstudio.consensus c JOIN segstudio.mask_versions v ON v.id = "
    "CASE WHEN c.annotator_a = current_user THEN c.head_a ELSE c.head_b END AND v.branch IS NOT NULL "
    "WHERE c.image_id = segstudio.images.id AND c.resolved_version IS NULL "
    "AND current_user IN (c.annotator_a, c.annotator_b))"
)


def seen_record(row: tuple[Any, ...]) -> ImageRecord:
    """The ImageRecord of a row selected with SEEN_COLUMNS."""
    rec = image_record(row[:-1])
    return rec if row[-1] is None else replace(rec, status=Status(row[-1]))


_COLUMNS = (
    "c.image_id, c.annotator_a, c.annotator_b, c.fork, c.head_a, c.head_b, c.resolved_version, "
    "c.resolved_how, c.resolved_by, va.status, vb.status, c.kept"
)
_FROM = (
    "segstudio.consensus c LEFT JOIN segstudio.mask_versions va ON va.id = c.head_a AND c.head_a IS DISTINCT "
    "FROM c.fork LEFT JOIN segstudio.mask_versions vb ON vb.id = c.head_b AND c.head_b IS DISTINCT FROM c.fork"
)


@dataclass(frozen=True)
class ConsensusImage:
    """One image's consensus: its two annotators, their branch heads, and how it was resolved."""

    image_id: int
    annotator_a: str
    annotator_b: str
    fork: int | None  # the main version both branches started from
    head_a: int | None
    head_b: int | None
    resolved_version: int | None
    resolved_how: str | None  # "A", "B" or "merge"
    resolved_by: str | None
    status_a: str | None  # status of the branch's last save (None: nothing saved on it yet)
    status_b: str | None
    kept: str | None = None  # "A"/"B": a lead took the image out of consensus keeping that branch

    @property
    def open(self) -> bool:
        return self.resolved_version is None

    def annotator(self, branch: str) -> str:
        return self.annotator_a if branch == "A" else self.annotator_b

    def branch_of(self, member: str) -> str | None:
        return "A" if member == self.annotator_a else "B" if member == self.annotator_b else None

    def head(self, branch: str) -> int | None:
        return self.head_a if branch == "A" else self.head_b

    def done(self, branch: str) -> bool:
        return (self.status_a if branch == "A" else self.status_b) == Status.DONE.value


def pick_consensus(records: Sequence[ImageRecord], fraction: float) -> list[ImageRecord]:
    """round(fraction * n) of `records`, picked by content hash: a fixed sample, spread over folders and
    model confidence alike (the same images whatever order they are listed in)."""
    if not 0.0 <= fraction <= 1.0:
        raise ProjectError(f"--consensus is a fraction of the images between 0 and 1, got {fraction}")
    count = round(fraction * len(records))

    def key(rec: ImageRecord) -> str:
        return hashlib.blake2b(
            f"consensus:{rec.content_hash}:{rec.rel_path}".encode(), digest_size=8
        ).hexdigest()

    return sorted(records, key=key)[:count]


def second_annotators(
    firsts: Sequence[tuple[ImageRecord, str]], members: Sequence[str]
) -> list[tuple[ImageRecord, str, str]]:
    """(image, annotator A, annotator B) with B never A and the second annotations dealt evenly."""
    if len(set(members)) < 2:
        raise ProjectError(
            "consensus needs two different annotators per image: name at least two members in --to"
        )
    load = dict.fromkeys(members, 0)
    result = []
    for rec, first in firsts:
        second = min((m for m in members if m != first), key=lambda m: (load[m], members.index(m)))
        load[second] += 1
        result.append((rec, first, second))
    return result


def parse_class_choices(
    specs: Sequence[str], names: Sequence[str], found: ConsensusImage | None = None
) -> dict[int, str]:
    """`CLASS=WHO` items (`team resolve --class car=A`) -> {class index: "A" or "B"}. WHO is A or B, or
    the name of annotator A or B when `found` says who they are; classes are the scheme's names (case
    does not matter when unambiguous). Anything else, or one class chosen twice, is a ProjectError."""
    lowered: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        lowered.setdefault(str(name).lower(), []).append(index)
    choices: dict[int, str] = {}
    for spec in specs:
        name, sep, who = (part.strip() for part in spec.rpartition("="))
        if not sep or not name or not who:
            raise ProjectError(f"--class takes CLASS=A or CLASS=B (e.g. --class car=A), not {spec!r}")
        if name in names:
            index = list(names).index(name)
        elif len(lowered.get(name.lower(), [])) == 1:
            index = lowered[name.lower()][0]
        else:
            raise ProjectError(
                f"--class {spec}: {name!r} is not a class of this project; its classes are: {', '.join(names)}"
            )
        branch = who.upper() if who.upper() in ("A", "B") else None
        if branch is None and found is not None:
            branch = found.branch_of(who)
        if branch is None:
            known = "" if found is None else f" ({found.annotator_a} or {found.annotator_b})"
            raise ProjectError(
                f"--class {spec}: {who!r} is neither annotator; name A or B, or annotator A or B by name{known}"
            )
        if index in choices and choices[index] != branch:
            raise ProjectError(f"--class names {names[index]} twice, with A and with B; choose one")
        choices[index] = branch
    return choices


def describe_choices(choices: Mapping[int, str], names: Sequence[str], found: ConsensusImage | None) -> str:
    """'car from alice (A), road from bob (B)': what a per-class merge took from whom."""

    def who(branch: str) -> str:
        return branch if found is None else f"{found.annotator(branch)} ({branch})"

    return ", ".join(f"{names[i] if i < len(names) else i} from {who(b)}" for i, b in sorted(choices.items()))


def _matrix(value: Any, size: int) -> np.ndarray | None:
    """A cached confusion matrix, or None when absent or not a (size, size) table of counts."""
    try:
        cm = np.asarray(value, np.int64)
    except (TypeError, ValueError):
        return None
    return cm if cm.shape == (size, size) else None


class Consensus:
    """Mixed into TeamProject (provides `_run`, `_row`, `_rows`, `_require`, `member`, `role`, `scheme`)."""

    member: str
    role: str
    scheme: Any
    state_dir: Path
    _run: Any
    _row: Any
    _rows: Any
    _require: Any
    _base: dict[int, int | None]

    # ---------------------------------------------------------------- set up (leads)

    def set_consensus(
        self, triples: Sequence[tuple[ImageRecord, str, str]]
    ) -> list[tuple[ImageRecord, str, str]]:
        """Send images to two annotators (leads only): (image, annotator A, annotator B) each. An image
        whose annotators already started keeps them (the server refuses the change); those set."""
        psycopg = require_driver()
        done = []
        for rec, first, second in triples:
            try:
                self._run(
                    lambda c, r=rec, a=first, b=second: c.execute(
                        "INSERT INTO segstudio.consensus(image_id, annotator_a, annotator_b) VALUES (%s, %s, %s) "
                        "ON CONFLICT (image_id) DO UPDATE SET annotator_a = excluded.annotator_a, "
                        "annotator_b = excluded.annotator_b WHERE (segstudio.consensus.annotator_a, "
                        "segstudio.consensus.annotator_b) IS DISTINCT FROM (excluded.annotator_a, excluded.annotator_b)",
                        (r.id, a, b),
                    ),
                    "send images to consensus (leads do)",
                )
            except psycopg.Error as error:
                if getattr(error, "sqlstate", None) != schema.CONSENSUS_SQLSTATE:
                    raise TeamError(f"cannot send {rec.rel_path} to consensus: {error}") from None
                continue  # started: keeps its two annotators
            done.append((rec, first, second))
        return done

    def add_consensus(
        self, records: Sequence[ImageRecord], members: Sequence[str], fraction: float
    ) -> dict[str, int]:
        """Send `fraction` of `records` (assigned images: their assignee is annotator A) to a second
        annotator among `members`; {second annotator: images sent}. Leads only."""
        members = [m.strip() for m in members if m.strip()]
        picked = pick_consensus(records, fraction)
        if not picked:
            return {}
        owners = self.assignments()  # type: ignore[attr-defined]
        unassigned = [r.rel_path for r in picked if r.id not in owners]
        if unassigned:
            raise ProjectError(
                f"assign these images first, their assignee is the first annotator: {', '.join(unassigned[:5])}"
            )
        triples = second_annotators([(r, owners[r.id]) for r in picked], members)
        counts: dict[str, int] = {}
        for _, _, second in self.set_consensus(triples):
            counts[second] = counts.get(second, 0) + 1
        return counts

    # ---------------------------------------------------------------- reading

    def consensus_images(self) -> dict[int, ConsensusImage]:
        """image id -> its consensus (open and resolved)."""
        rows = self._rows(f"SELECT {_COLUMNS} FROM {_FROM}")
        return {int(r[0]): ConsensusImage(*r) for r in rows}

    def consensus_of(self, rec: ImageRecord | int) -> ConsensusImage | None:
        image_id = rec if isinstance(rec, int) else rec.id
        row = self._row(f"SELECT {_COLUMNS} FROM {_FROM} WHERE c.image_id = %s", (image_id,))
        return None if row is None else ConsensusImage(*row)

    def _my_branch(self, image_id: int) -> str | None:
        """'A'/'B' when this member annotates a branch of the image's open consensus, else None."""
        row = self._row(
            "SELECT CASE WHEN annotator_a = %s THEN 'A' ELSE 'B' END FROM segstudio.consensus "
            "WHERE image_id = %s AND resolved_version IS NULL AND %s IN (annotator_a, annotator_b)",
            (self.member, image_id, self.member),
        )
        return None if row is None else str(row[0])

    def _branch_head(self, image_id: int, branch: str) -> int | None:
        row = self._row(
            f"SELECT {'head_a' if branch == 'A' else 'head_b'} FROM segstudio.consensus WHERE image_id = %s",
            (image_id,),
        )
        return None if row is None or row[0] is None else int(row[0])

    def _version_png(self, version: int | None, rec: ImageRecord, what: str) -> np.ndarray | None:
        if version is None:
            return None
        row = self._row("SELECT png FROM segstudio.mask_versions WHERE id = %s", (version,))
        if row is None:
            raise TeamPermissionError(
                f"you may not see {what} of {rec.rel_path} yet: consensus is blind until a reviewer resolves it"
            )
        return None if row[0] is None else decode_png(row[0], rec.shape, f"{what} of {rec.rel_path}")

    def branch_masks(self, rec: ImageRecord) -> tuple[ConsensusImage, np.ndarray | None, np.ndarray | None]:
        """(consensus, mask A, mask B) for a reviewer (or anyone once resolved); None: nothing saved."""
        found = self.consensus_of(rec)
        if found is None:
            raise ProjectError(f"{rec.rel_path} is not a consensus image (it has one annotator)")
        return (
            found,
            self._version_png(found.head_a, rec, f"{found.annotator_a}'s annotation"),
            self._version_png(found.head_b, rec, f"{found.annotator_b}'s annotation"),
        )

    # ---------------------------------------------------------------- agreement

    def agreement(self, rec: ImageRecord) -> Agreement | None:
        """IoU per class between the two annotations (None while either has no mask)."""
        _, a, b = self.branch_masks(rec)
        if a is None or b is None:
            return None
        return Agreement.from_confusion(pair_confusion(a, b, len(self.scheme.names)), self.scheme.names)

    def consensus_report(self) -> dict[str, Any]:
        """Agreement over the project: per image, per class (pooled) and per annotator pair; only images
        whose two annotations are both marked done (a half-made annotation would count as disagreement).

        Versions never change, so each image's confusion matrix is kept on this machine by the pair of
        versions it compares (`consensus_agreement.json` in the cache folder): a report reads only the
        masks of pairs it has not compared before."""
        by_id = {r.id: r for r in self.images()}  # type: ignore[attr-defined]
        found = {i: c for i, c in self.consensus_images().items() if i in by_id}  # removed: not counted
        names = self.scheme.names
        known = self._agreement_cache()
        fresh = dict(known)
        items, images, waiting = [], [], 0
        for image_id, c in sorted(found.items()):
            rec = by_id[image_id]
            if not (c.done("A") and c.done("B")):
                waiting += c.kept is None  # taken out of consensus: nobody waits for it
                continue
            if c.open and c.branch_of(self.member) is not None:
                continue  # an annotator's own report: the other branch is hidden until resolved
            key = f"{c.head_a}:{c.head_b}:{len(names)}"
            cm = _matrix(known.get(key), len(names))
            if cm is None:
                _, a, b = self.branch_masks(rec)
                if a is None or b is None:
                    waiting += 1
                    continue
                cm = pair_confusion(a, b, len(names))
                fresh[key] = cm.tolist()
            agreement = Agreement.from_confusion(cm, names)
            items.append((c.annotator_a, c.annotator_b, agreement, cm))
            images.append({
                "image": rec.rel_path, "annotators": [c.annotator_a, c.annotator_b],
                "resolved": c.resolved_how, **agreement.to_dict(),
            })  # fmt: skip
        if fresh != known:
            with contextlib.suppress(OSError):  # only a cache: the next report computes it again
                atomic_write_json(self.state_dir / AGREEMENT_CACHE, fresh, indent=None)
        summary = summarize(items, names)
        return {
            "consensus_images": len(found),
            "resolved": sum(1 for c in found.values() if not c.open and c.kept is None),
            "single": sum(1 for c in found.values() if c.kept is not None),
            "compared": len(images),
            "waiting": waiting,
            **summary,
            "images": images,
        }

    def _agreement_cache(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads((self.state_dir / AGREEMENT_CACHE).read_text())
            if isinstance(data, dict):
                return data
        return {}

    def consensus_summary(self) -> dict[str, Any]:
        """What `segstudio info --db` shows: counts and the project's agreement (no per-image list)."""
        report = self.consensus_report()
        report.pop("images")
        return report

    # ---------------------------------------------------------------- resolving (reviewers)

    def resolve_consensus(
        self,
        rec: ImageRecord,
        take: str,
        status: Status | str = Status.DONE,
        seen: tuple[int | None, int | None] | None = None,
        classes: Mapping[int, str] | None = None,
    ) -> int:
        """Make the image's main version from its two annotations: "A", "B" or "merge"; the new version id.

        `classes` (merge only): class index -> "A" or "B", the annotator trusted for that class
        (`agreement.merge_annotations`); the classes not named follow the merge rule.
        Both annotators must have marked their annotation done. `seen`: the branch heads (A, B) the
        reviewer compared (default: those read now); refused (StaleSaveError) when either annotator saved
        after that, so a reviewer never resolves what they did not see."""
        if take not in TAKES:
            raise ProjectError(f"take one of A, B or merge, not {take!r}")
        if classes and take != "merge":
            raise ProjectError(
                "a per-class choice picks an annotator per class within a merge: use it with --take merge "
                f"(--take {take} takes the whole annotation)"
            )
        if classes:
            bad = [
                f"{c}={who}"
                for c, who in classes.items()
                if who not in ("A", "B") or not 0 <= c < len(self.scheme.names)
            ]
            if bad:
                raise ProjectError(f"class choices name a class of the project and A or B; got {bad}")
        mine = self.consensus_of(rec)
        if mine is not None and mine.open and mine.branch_of(self.member) is not None:
            raise TeamPermissionError(
                f"you annotated branch {mine.branch_of(self.member)} of {rec.rel_path}, so someone else resolves "
                "it (a reviewer or lead who annotated neither branch)"
            )
        found, a, b = self.branch_masks(rec)
        if not found.open:
            raise ProjectError(
                f"{rec.rel_path} was already resolved by {found.resolved_by} (take {found.resolved_how}, "
                f"version {found.resolved_version}); edit or review it like any image"
            )
        for branch, mask in (("A", a), ("B", b)):
            if mask is None or not found.done(branch):
                raise ProjectError(
                    f"{found.annotator(branch)} has not finished their annotation of {rec.rel_path} (branch "
                    f"{branch}: {'nothing saved' if mask is None else 'not marked done'}); resolve it once "
                    "both annotators marked it done"
                )
        assert a is not None and b is not None
        mask = a if take == "A" else b if take == "B" else merge_annotations(a, b, classes)[0]
        head = self._head(rec.id)  # type: ignore[attr-defined]
        sources = list(seen) if seen is not None else [found.head_a, found.head_b]
        psycopg = require_driver()
        try:
            new = self._run(
                lambda c: c.execute(
                    "INSERT INTO segstudio.mask_versions(image_id, parent, png, status, resolves, sources) "
                    "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    (rec.id, head, encode_png(mask), status_of(status).value, take, sources),
                ).fetchone()[0],
                "resolve a consensus image (reviewers who annotated neither branch do)",
            )
        except psycopg.Error as error:
            state = getattr(error, "sqlstate", None)
            if state == schema.STALE_SQLSTATE:
                raise StaleSaveError(
                    f"{rec.rel_path} changed while you compared (an annotator saved again, or someone saved "
                    "the main version); nothing was written. Compare again."
                ) from None
            if state == "42501":
                raise TeamPermissionError(f"{rec.rel_path}: {error.diag.message_primary}") from None
            raise TeamError(f"the team server refused to resolve {rec.rel_path}: {error}") from None
        self._base[rec.id] = int(new)
        return int(new)

    # ---------------------------------------------------------------- out of consensus (leads)

    def leave_consensus(self, rec: ImageRecord, keep: str) -> ConsensusImage | None:
        """Take the image out of consensus (leads), keeping branch `keep` ("A", "B" or its annotator's
        name): the kept annotator's last save becomes the image's main version (the other branch stays in
        the history) and the image is theirs, an ordinary one. Before anyone saved on a branch the image
        just leaves consensus. The consensus after (None when it simply left). All done by the server
        (`consensus.kept`, schema 7), so psql gets the same."""
        found = self.consensus_of(rec)
        if found is None:
            raise ProjectError(f"{rec.rel_path} is not a consensus image (it has one annotator)")
        branch = keep if keep in ("A", "B") else found.branch_of(keep)
        if branch is None:
            raise ProjectError(
                f"{keep} annotates neither branch of {rec.rel_path}: keep A ({found.annotator_a}) or "
                f"B ({found.annotator_b})"
            )
        if not found.open:
            how = f"kept {found.kept}" if found.kept else f"take {found.resolved_how}"
            raise ProjectError(
                f"{rec.rel_path} is out of consensus already ({found.resolved_by}, {how}, version "
                f"{found.resolved_version}); edit or review it like any image"
            )
        psycopg = require_driver()
        try:
            changed = self._run(
                lambda c: (
                    c.execute(
                        "UPDATE segstudio.consensus SET kept = %s WHERE image_id = %s AND resolved_version IS NULL",
                        (branch, rec.id),
                    ).rowcount
                ),
                "take an image out of consensus (leads do)",
            )
        except psycopg.Error as error:
            state = getattr(error, "sqlstate", None)
            if state == "P0002":
                raise ProjectError(f"{rec.rel_path} was removed from the team project") from None
            raise TeamError(
                f"the team server refused to take {rec.rel_path} out of consensus: "
                f"{error.diag.message_primary or error}"
            ) from None
        if not changed:
            raise ProjectError(f"{rec.rel_path} was resolved meanwhile; edit or review it like any image")
        self._base.pop(rec.id, None)  # the main line moved
        return self.consensus_of(rec)

    def _kept_mine(self, rec: ImageRecord, base: int | None) -> int | None:
        """When a lead took the image out of consensus keeping this member's branch while they worked on
        it, and nobody saved since: the main version made from their last branch save (the same pixels
        as `base`), on which their save goes on; else None."""
        found = self.consensus_of(rec)
        if (
            found is None
            or found.kept is None
            or found.branch_of(self.member) != found.kept
            or base != found.head(found.kept)
            or found.resolved_version is None
        ):
            return None
        head = self._head(rec.id)  # type: ignore[attr-defined]
        return found.resolved_version if head == found.resolved_version else None

    # ---------------------------------------------------------------- saves on my branch

    def _closed_branch(self, rec: ImageRecord, base: int | None) -> bool:
        """Did this save start from the member's own branch of a consensus resolved since?"""
        found = self.consensus_of(rec)
        return bool(
            found is not None
            and not found.open
            and found.branch_of(self.member) is not None
            and base is not None
            and base == found.head(found.branch_of(self.member) or "A")
        )

    def _branch_refusal(self, rec: ImageRecord, error: Any) -> TeamError:
        """A clear error for a save the consensus rules refused (SQLSTATE SCONS)."""
        found = self.consensus_of(rec)
        if found is not None and found.kept is not None:
            return TeamError(
                f"{found.resolved_by} took {rec.rel_path} out of consensus while you worked on it, keeping "
                f"{found.annotator(found.kept)}'s annotation, so your save was not stored. Your pixels are still in "
                "the window; reopen the image to see its version now."
            )
        if found is not None and not found.open:
            return TeamError(
                f"{rec.rel_path} was resolved by {found.resolved_by} while you worked on it, so your annotation "
                "was not saved (the two annotations are closed). Your pixels are still in the window; reopen "
                "the image to see the resolved version."
            )
        if found is not None:
            return TeamPermissionError(
                f"{rec.rel_path} waits for consensus ({found.annotator_a} and {found.annotator_b} annotate it), "
                "so only a reviewer's resolution may be saved on it; nothing was written"
            )
        return TeamError(f"the team server refused the save of {rec.rel_path}: {error}")
