"""`segstudio team ...`: set up a team server, turn a local project into a team project, pull it back.

    segstudio team init-server --db postgresql://postgres@HOST/postgres [--database NAME] [--print-only]
    segstudio team create FOLDER --db postgresql://LEAD@HOST/NAME [--store-images]
    segstudio team pull postgresql://USER@HOST/NAME FOLDER
    segstudio team add FOLDER --db URL [--store-images] [PATH ...]
    segstudio team assign FOLDER --db URL --to NAME[,NAME] [--by round-robin|folder|confidence] [PATH ...]
                         [--consensus FRACTION]
    segstudio team resolve FOLDER IMAGE --db URL --take A|B|merge [--class CLASS=A|B ...] [--accept]
    segstudio team single FOLDER IMAGE --db URL --keep A|B|NAME
    segstudio team remove FOLDER IMAGE... --db URL
    segstudio team restore FOLDER [IMAGE...] --db URL

Members join with `segstudio FOLDER --db URL` (the window) or `segstudio predict FOLDER --db URL`.
Passwords come from ~/.pgpass, PGPASSWORD or a service file, never from the command line.
"""

from __future__ import annotations

import argparse
import sys

from segstudio.core.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    init = sub.add_parser("init-server", help="create the SegStudio group roles and a project database")
    init.add_argument(
        "--db", required=True, help="URL of an administrator (superuser or CREATEROLE + CREATEDB)"
    )
    init.add_argument("--database", default="segstudio", help="name of the project database to create")
    init.add_argument("--print-only", action="store_true", help="print the SQL without running it")
    create = sub.add_parser("create", help="upload a local project into an empty team database (lead)")
    create.add_argument("folder", help="image folder of the local project")
    create.add_argument("--db", required=True, help="postgresql://LEAD@HOST:PORT/DATABASE")
    create.add_argument("--project-dir", help="the local project's state folder, when not FOLDER/.segstudio")
    create.add_argument(
        "--store-images",
        action="store_true",
        help="keep the images' bytes in the server too, so members join with only the URL",
    )
    pull = sub.add_parser("pull", help="make a local project from a team project")
    pull.add_argument("url", help="postgresql://USER@HOST:PORT/DATABASE")
    pull.add_argument("folder", help="the image folder (a copy of the team's images)")
    pull.add_argument("--project-dir", help="write the local project here instead of FOLDER/.segstudio")
    assign = sub.add_parser("assign", help="assign images to members' work queues (lead)")
    assign.add_argument("folder", help="your copy of the team's image folder")
    assign.add_argument(
        "paths", nargs="*", help="these images only (by hand); default: every unassigned, unfinished one"
    )
    assign.add_argument("--db", required=True, help="postgresql://LEAD@HOST:PORT/DATABASE")
    assign.add_argument("--to", required=True, help="member names (database logins), comma-separated")
    assign.add_argument(
        "--by",
        choices=["round-robin", "folder", "confidence"],
        default="round-robin",
        help="deal in order, whole folders per member, or least confident predictions first",
    )
    assign.add_argument(
        "--consensus",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="also send this fraction of the dealt images (1 = all the PATHs given) to a second annotator "
        "among --to; the two annotate blind and a reviewer resolves (docs/team.md)",
    )
    resolve = sub.add_parser(
        "resolve", help="make a consensus image's mask from its two annotations (reviewer)"
    )
    resolve.add_argument("folder", help="your copy of the team's image folder")
    resolve.add_argument("image", help="the image, relative to the folder")
    resolve.add_argument("--db", required=True, help="postgresql://REVIEWER@HOST:PORT/DATABASE")
    resolve.add_argument(
        "--take",
        required=True,
        choices=["A", "B", "merge"],
        help="annotation A (the assignee's), B (the second annotator's), or merge: what both agree on, "
        "disputed pixels left unlabelled to paint",
    )
    resolve.add_argument(
        "--class",
        dest="classes",
        action="append",
        default=[],
        metavar="CLASS=A|B",
        help="with --take merge: trust annotator A or B (or name them) for this class; repeatable. Pixels "
        "either labelled as CLASS take that annotator's labels (docs/team.md)",
    )
    resolve.add_argument("--accept", action="store_true", help="also accept the result (as its reviewer)")
    single = sub.add_parser(
        "single", help="take a consensus image out of consensus, keeping one annotator's work (lead)"
    )
    single.add_argument("folder", help="your copy of the team's image folder")
    single.add_argument("image", help="the image, relative to the folder")
    single.add_argument("--db", required=True, help="postgresql://LEAD@HOST:PORT/DATABASE")
    single.add_argument(
        "--keep",
        required=True,
        metavar="A|B|NAME",
        help="the annotation kept: A, B or its annotator's name; their last save becomes the image's "
        "version and the image theirs (the other annotation stays in the history)",
    )
    remove = sub.add_parser(
        "remove", help="remove images from the team project; nothing saved is lost (lead)"
    )
    remove.add_argument("folder", help="your copy of the team's image folder")
    remove.add_argument("images", nargs="+", help="the images, relative to the folder")
    remove.add_argument("--db", required=True, help="postgresql://LEAD@HOST:PORT/DATABASE")
    restore = sub.add_parser("restore", help="bring removed images back, exactly as they were (lead)")
    restore.add_argument("folder", help="your copy of the team's image folder")
    restore.add_argument(
        "images", nargs="*", help="the images, relative to the folder; none: list the removed"
    )
    restore.add_argument("--db", required=True, help="postgresql://LEAD@HOST:PORT/DATABASE")
    add = sub.add_parser("add", help="add new images of the folder to the team project (lead)")
    add.add_argument("folder", help="your copy of the team's image folder, holding the new images")
    add.add_argument("paths", nargs="*", help="these images only; default: every image the project lacks")
    add.add_argument("--db", required=True, help="postgresql://LEAD@HOST:PORT/DATABASE")
    add.add_argument(
        "--store-images",
        action="store_true",
        help="upload the bytes of every team image the server lacks, and keep images in the server from now on",
    )
    activate = sub.add_parser("activate", help="make a model version the team's model (lead)")
    activate.add_argument("folder", help="your copy of the team's image folder")
    activate.add_argument("version", help="the model version to activate, e.g. v3")
    activate.add_argument("--db", required=True, help="postgresql://LEAD@HOST:PORT/DATABASE")
    report = sub.add_parser("report", help="effort per annotator and model version, rejection rate")
    report.add_argument("folder", help="your copy of the team's image folder")
    report.add_argument("--db", required=True, help="postgresql://USER@HOST:PORT/DATABASE")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _init_server(args: argparse.Namespace) -> int:
    from segstudio.team import schema
    from segstudio.team.connection import connect, describe, require_driver

    sql = [schema.server_sql(), schema.create_database_sql(args.database)]
    print("-- SQL run by `segstudio team init-server` (roles are server-wide; the database is the project's)")
    for statement in sql:
        print(statement)
    print(
        "-- then, per member (psql as the administrator; the password is typed, never stored by SegStudio):\n"
        "--   CREATE ROLE alice LOGIN IN ROLE segstudio_annotator;  \\password alice\n"
        "--   (segstudio_reviewer for reviewers, segstudio_lead for leads)"
    )
    if args.print_only:
        return 0
    psycopg = require_driver()
    conn = connect(args.db)
    try:
        conn.execute(sql[0])
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.database,)).fetchone()
        if exists:
            print(f"database {args.database!r} already exists: left as it is", file=sys.stderr)
        else:
            conn.execute(sql[1])
    except psycopg.errors.InsufficientPrivilege as error:
        from segstudio.team.errors import TeamError

        raise TeamError(
            f"{describe(args.db)} may not create roles or databases ({str(error).splitlines()[0]}); run "
            "init-server as the server's administrator (e.g. postgres), or hand the printed SQL to them "
            "(`--print-only`)."
        ) from None
    finally:
        conn.close()
    print(f"ready: roles segstudio_annotator/reviewer/lead and database {args.database!r}", file=sys.stderr)
    return 0


def _assign(args: argparse.Namespace) -> int:
    from segstudio.core.errors import ProjectError
    from segstudio.team.assignments import FINISHED
    from segstudio.team.project import TeamProject

    with TeamProject.join(args.folder, args.db, heartbeat=False) as project:
        if args.paths:
            records = []
            for path in args.paths:
                rec = project.get(path)
                if rec is None:
                    raise ProjectError(
                        f"{path} is not an image of the team project; check the path (relative to the folder)"
                    )
                records.append(rec)
        else:
            taken = project.assignments()
            records = [
                r for r in project.images() if r.id not in taken and r.status not in FINISHED and not r.error
            ]
        counts = project.assign(records, args.to.split(","), "round-robin" if args.paths else args.by)
        seconds = project.add_consensus(records, args.to.split(","), args.consensus) if args.consensus else {}
    print(", ".join(f"{member}: {n} image(s)" for member, n in counts.items()) or "nothing to assign")
    if seconds:
        print(
            f"consensus: {sum(seconds.values())} image(s) also go to a second annotator ("
            + ", ".join(f"{member}: {n}" for member, n in seconds.items())
            + ")"
        )
    return 0


def _resolve(args: argparse.Namespace) -> int:
    from segstudio.core.errors import ProjectError
    from segstudio.team.consensus import describe_choices, parse_class_choices
    from segstudio.team.project import TeamProject

    with TeamProject.join(args.folder, args.db, heartbeat=False) as project:
        rec = project.get(args.image)
        if rec is None:
            raise ProjectError(f"{args.image} is not an image of the team project; check the path")
        if args.classes and args.take != "merge":
            raise ProjectError(
                f"--class picks an annotator per class within a merge: use it with --take merge, not --take "
                f"{args.take} (which takes the whole annotation)"
            )
        names = project.scheme.names
        choices = parse_class_choices(args.classes, names, project.consensus_of(rec))
        version = project.resolve_consensus(rec, args.take, classes=choices)
        agreement = project.agreement(rec)
        found = project.consensus_of(rec)
        assert found is not None
        made = {
            "A": f"{found.annotator_a}'s annotation",
            "B": f"{found.annotator_b}'s annotation",
            "merge": f"{found.annotator_a}'s and {found.annotator_b}'s annotations",
        }[args.take]
        line = f"{rec.rel_path}: version {version} made from {made}"
        if choices:
            line += f"; {describe_choices(choices, names, found)}"
        if agreement is not None and agreement.miou is not None:
            line += f" (agreement mIoU {agreement.miou:.3f}, {agreement.disputed} disputed pixels)"
        print(line)
        if args.accept:
            how = args.take + (f" ({describe_choices(choices, names, None)})" if choices else "")
            project.review(project._require(rec), True, f"consensus: took {how}")
            print(f"{rec.rel_path}: accepted")
    return 0


def _single(args: argparse.Namespace) -> int:
    from segstudio.core.errors import ProjectError
    from segstudio.team.project import TeamProject

    with TeamProject.join(args.folder, args.db, heartbeat=False) as project:
        rec = project.get(args.image)
        if rec is None:
            raise ProjectError(f"{args.image} is not an image of the team project; check the path")
        before = project.consensus_of(rec)
        after = project.leave_consensus(rec, args.keep)
        assert before is not None
        branch = args.keep if args.keep in ("A", "B") else before.branch_of(args.keep) or "A"
        who = before.annotator(branch)
        if after is None:
            print(f"{rec.rel_path}: out of consensus (nobody had saved on it); an ordinary image of {who}")
        else:
            print(
                f"{rec.rel_path}: out of consensus; {who}'s annotation is version {after.resolved_version}, "
                f"an ordinary image of {who} (the other annotation stays in the history)"
            )
    return 0


def _remove(args: argparse.Namespace, removed: bool) -> int:
    from segstudio.core.errors import ProjectError
    from segstudio.team.project import TeamProject

    with TeamProject.join(args.folder, args.db, heartbeat=False) as project:
        if not removed and not args.images:
            gone = project.removed_images()
            for item in gone:
                print(f"{item.record.rel_path}  (removed by {item.removed_by or 'a lead'})")
            print(
                f"{len(gone)} removed image(s)"
                + ("; `team restore FOLDER IMAGE...` brings them back" if gone else "")
            )
            return 0
        records = []
        for path in args.images:
            rec = project.get(path) if removed else project.find_removed(path)
            if rec is None:
                why = "not an image of the team project" if removed else "not a removed image"
                if removed and project.find_removed(path) is not None:
                    why = "removed already"
                elif not removed and project.get(path) is not None:
                    why = "part of the project (not removed)"
                raise ProjectError(
                    f"{path} is {why}; check the path (relative to the folder). Nothing was changed."
                )
            records.append(rec)
        changed = project.remove_images(records) if removed else project.restore_images(records)
    verb = "removed" if removed else "restored"
    print(f"{verb} {len(changed)} image(s): " + ", ".join(r.rel_path for r in changed))
    if removed:
        print("their masks, versions and reviews are kept; `segstudio team restore` brings them back")
    return 0


def _activate(args: argparse.Namespace) -> int:
    from segstudio.team.fine_tune import require_lead_to_activate
    from segstudio.team.project import TeamProject

    with TeamProject.join(args.folder, args.db, heartbeat=False) as project:
        require_lead_to_activate(project)
        project.set_active_model_version(args.version)
    print(f"{args.version} is the team's model; members' windows switch to it within seconds")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "activate":
        return _activate(args)
    if args.action == "init-server":
        return _init_server(args)
    if args.action == "create":
        from segstudio.team.connection import describe
        from segstudio.team.transfer import create_team_project

        counts = create_team_project(args.folder, args.db, args.project_dir, args.store_images)
        print(
            f"team project created at {describe(args.db)}: "
            + ", ".join(f"{v} {k}" for k, v in counts.items())
        )
        joining = "an empty FOLDER" if args.store_images else args.folder
        print(f"members join with: segstudio {joining} --db {args.db}")
        return 0
    if args.action == "pull":
        from segstudio.team.connection import describe
        from segstudio.team.transfer import pull_team_project

        counts = pull_team_project(args.url, args.folder, args.project_dir)
        print(
            f"local project made from {describe(args.url)}: "
            + ", ".join(f"{v} {k}" for k, v in counts.items())
        )
        return 0
    if args.action == "assign":
        return _assign(args)
    if args.action == "resolve":
        return _resolve(args)
    if args.action == "single":
        return _single(args)
    if args.action in ("remove", "restore"):
        return _remove(args, args.action == "remove")
    if args.action == "add":
        from segstudio.team.adding import add_images, describe_report
        from segstudio.team.project import TeamProject

        with TeamProject.join(args.folder, args.db, heartbeat=False) as project:
            print(describe_report(add_images(project, args.paths, args.store_images)))
        return 0
    if args.action == "report":
        from segstudio.team.report import print_report

        return print_report(args.folder, args.db, args.json)
    raise UsageError(
        "choose an action: init-server, create, pull, add, assign, resolve, single, remove, restore, "
        "activate or report "
        "(`segstudio team --help`)"
    )
