"""`vaebench`: run suites, list what is registered, aggregate and inspect results."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path

from vaebench.errors import VaebenchError

DEFAULT_DATA_ROOT = "data"
# Failures of the machine, not of vaebench: a full disk, a read-only or foreign folder.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                      errno.ENOTDIR, errno.EISDIR}

EPILOG = """examples:
  vaebench run suites/quickstart.yaml                 train, evaluate, print the leaderboard
  vaebench run suites/disentangle.yaml --set train.steps=2000 --set 'seeds=[0]'
  vaebench run suites/quickstart.yaml --dry-run       show the runs without training
  vaebench evaluate suites/quickstart.yaml --set 'metrics=[mig, sap]'   score finished runs, train nothing
  vaebench list models
  vaebench status results/quickstart
  vaebench leaderboard results/quickstart --sort-by mig
  vaebench report results/quickstart                  static HTML report -> results/quickstart/report/
  vaebench compare results/quickstart --reference vae --score mig
  vaebench fid mnist samples/                         domain FID of a folder of PNGs vs MNIST's test set
"""


def _data_root(arg: str | None, suite_value: str | None = None) -> Path:
    """--data-root, else $VAEBENCH_DATA, else the suite's data_root, else ./data."""
    return Path(arg or os.environ.get("VAEBENCH_DATA") or suite_value or DEFAULT_DATA_ROOT)


def cmd_list(args) -> int:
    from vaebench.registry import DATASETS, EXECUTORS, METRICS, MODELS

    registry = {"models": MODELS, "datasets": DATASETS, "metrics": METRICS,
                "executors": EXECUTORS}[args.kind]
    entries = registry.entries()
    width = max(len(e.name) for e in entries)
    for e in entries:
        print(f"{e.name:<{width}}  {e.description}")
        if e.paper:
            print(f"{'':<{width}}  paper: {e.paper}")
        if e.scores:
            print(f"{'':<{width}}  scores: " + ", ".join(f"{s} ({d} is better)" for s, d in e.scores.items()))
    return 0


def _job_table(specs, store) -> str:
    import pandas as pd

    from vaebench.report.leaderboard import params_label

    rows = [{"run_id": s.run_id, "dataset": s.dataset, "model": s.model,
             "params": params_label(s.model_params, s.grid_keys), "seed": s.seed,
             "steps": s.train["steps"], "state": store.state(s.run_id)} for s in specs]
    return pd.DataFrame(rows).to_string(index=False)


def cmd_run(args) -> int:
    return _execute(args, train=True)


def cmd_evaluate(args) -> int:
    return _execute(args, train=False)


def _execute(args, train: bool) -> int:
    """`run` (train what is missing, then evaluate what is missing) and `evaluate` (never train)."""
    from vaebench.registry import EXECUTORS
    from vaebench.report.leaderboard import format_table, leaderboard, write_csv
    from vaebench.report.plots import plot_leaderboard
    from vaebench.runner.executors import RunTarget
    from vaebench.runner.run import load_dataset
    from vaebench.runner.store import RunStore, write_json
    from vaebench.runner.suite import expand, load_suite

    from vaebench.runner.store import check_writable
    from vaebench.runner.train import resolve_device

    suite = load_suite(args.suite, args.set, max_runs=args.max_runs)
    specs = expand(suite, args.suite)
    metrics = getattr(args, "metrics", None)
    if metrics:
        asked = {m.name for m in suite.metrics}
        unknown = sorted(set(metrics) - asked)
        if unknown:
            raise VaebenchError(f"--metrics {' '.join(unknown)}: not in {args.suite}'s metrics "
                                f"({', '.join(sorted(asked))}); add it to the suite's metrics list "
                                f"(or --set 'metrics=[...]') first")
    results_dir = Path(args.results or suite.results_dir)
    if results_dir.exists() and not results_dir.is_dir():
        raise VaebenchError(f"--results {results_dir} is a file; give a folder (it is created "
                            f"if missing)")
    data_root = _data_root(args.data_root, suite.data_root)
    suite_dir = results_dir / suite.name
    store = RunStore(suite_dir)
    print(f"suite {suite.name}: {len(specs)} runs -> {suite_dir}/")
    if args.dry_run:
        print(_job_table(specs, store))
        if not args.no_estimate:
            from vaebench.runner.estimate import estimate, format_estimate

            print()
            print(format_estimate(estimate(specs, store, data_root), str(resolve_device(specs[0].device))))
        return 0
    executor = EXECUTORS.get(args.executor, where="--executor")(vars(args))
    executor.check()  # bad executor options (a SLURM preset...) stop here, before anything is written
    resolve_device(suite.device)  # a GPU that is not there stops here, before anything is written
    # Load every dataset before anything is written: a missing one stops here, cleanly.
    for i, d in enumerate(suite.datasets):
        n_train = load_dataset(d.name, d.params, data_root).num_examples("train")
        if suite.train.batch_size > n_train:
            raise VaebenchError(f"{args.suite}: train.batch_size {suite.train.batch_size} is larger "
                                f"than datasets[{i}] ({d.name}), which has {n_train} training "
                                f"images; lower the batch size or raise train_size")
    check_writable(suite_dir)
    write_json(suite_dir / "suite.json", {"suite": suite.model_dump(), "source": str(args.suite),
                                          "run_ids": [s.run_id for s in specs]})
    target = RunTarget(results_dir, data_root, Path(args.fid_weights) if args.fid_weights else None,
                       progress=not args.no_progress, train=train,
                       metrics=tuple(metrics) if metrics else None)
    outcomes = executor.submit(specs, target)
    if args.wait:
        outcomes = executor.wait(outcomes, target)
    if any(o.status == "queued" for o in outcomes):
        print(f"check progress with `vaebench status {suite_dir}`; when all are done, "
              f"`vaebench leaderboard {suite_dir}` (or add --wait to block until then)")
        return 0
    busy = [o for o in outcomes if o.status == "busy"]
    if busy:
        print(f"\n{len(busy)} run(s) skipped: another process is on them (e.g. {busy[0].reason}); "
              f"run this command again once it has finished", file=sys.stderr)
    untrained = [o.run_id for o in outcomes if o.status == "untrained"]
    if untrained:
        print(f"{len(untrained)} run(s) not trained yet, left for `vaebench run` "
              f"(evaluate never trains), e.g. {untrained[0]}")
    board = leaderboard(suite_dir, run_ids=[s.run_id for s in specs])  # the suite as it stands
    write_csv(board, suite_dir / "leaderboard.csv")
    plot_leaderboard(board, suite_dir / "leaderboard.png")
    print(format_table(board))
    print(f"\nleaderboard: {suite_dir / 'leaderboard.csv'} (picture: leaderboard.png)")
    if not args.no_report:
        from vaebench.report.html import write_report

        print(f"report: {write_report(suite_dir, data_root=data_root)}")
    _print_damaged(board.attrs.get("damaged", []))
    states = {s.run_id: store.state(s.run_id) for s in specs}
    failed = [rid for rid, state in states.items() if state == "failed"]
    metric_errors = {rid: store.metric_errors(rid) for rid, state in states.items() if state == "done"}
    metric_errors = {rid: e for rid, e in metric_errors.items() if e}
    if failed:
        print(f"\n{len(failed)} run(s) failed; see `vaebench status {suite_dir}`:", file=sys.stderr)
        for rid in failed:
            print(f"  {rid}: {store.failure(rid)['reason']}", file=sys.stderr)
    if metric_errors:
        print(f"\n{len(metric_errors)} run(s) finished with a failed metric:", file=sys.stderr)
        for rid, errors in metric_errors.items():
            for name, error in errors.items():
                print(f"  {rid}: {name}: {error}", file=sys.stderr)
    return 1 if failed or metric_errors or board.attrs.get("damaged") else 0


def _print_damaged(damaged) -> None:
    """Runs skipped because a results file is damaged: the file and what is wrong with it."""
    if damaged:
        print(f"\n{len(damaged)} damaged run(s) skipped:", file=sys.stderr)
        for d in damaged:
            print(f"  {d.path}: {d.problem}", file=sys.stderr)


def _suite_dirs(path: Path) -> list[Path]:
    """RESULTS_DIR may be one suite's folder or a folder of suites."""
    if not path.is_dir():
        raise VaebenchError(f"{path} is not a folder; give a results folder such as results/quickstart")
    if (path / "suite.json").is_file() or any(p.joinpath("config.json").is_file() for p in path.iterdir()):
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and (p / "suite.json").is_file())
    if not found:
        raise VaebenchError(f"{path} holds no vaebench results (no suite.json or run folders)")
    return found


def _settle(suite_dir: Path) -> None:
    """Let every executor record the runs it held that ended unfinished (SLURM jobs)."""
    from vaebench.registry import EXECUTORS

    for entry in EXECUTORS.entries():
        entry.obj.settle(suite_dir)


def cmd_leaderboard(args) -> int:
    from vaebench.report.leaderboard import format_table, leaderboard, write_csv
    from vaebench.report.plots import plot_leaderboard
    from vaebench.runner.store import check_writable

    for suite_dir in _suite_dirs(Path(args.results_dir)):
        _settle(suite_dir)
        board = leaderboard(suite_dir, sort_by=args.sort_by)
        out = Path(args.output) if args.output else suite_dir / "leaderboard.csv"
        if out.is_dir():
            raise VaebenchError(f"-o {out} is a folder; give a CSV file path such as "
                                f"{out / 'leaderboard.csv'}")
        check_writable(out.parent)
        write_csv(board, out)
        plot_leaderboard(board, out.with_suffix(".png"))
        print(f"== {suite_dir.name} ==\n{format_table(board)}\n-> {out}")
        _print_damaged(board.attrs.get("damaged", []))
    return 0


def cmd_report(args) -> int:
    import vaebench.runner.run  # noqa: F401  (imports every registry)
    from vaebench.report.html import write_report

    suites = _suite_dirs(Path(args.results_dir))
    if args.output and len(suites) > 1:
        raise VaebenchError(f"-o {args.output}: {args.results_dir} holds {len(suites)} suites; "
                            f"give one suite's folder, e.g. {suites[0]}")
    for suite_dir in suites:
        _settle(suite_dir)
        index = write_report(suite_dir, Path(args.output) if args.output else None,
                             data_root=_data_root(args.data_root), reference=args.reference,
                             scores=args.score or None, baselines=not args.no_baselines)
        print(f"{suite_dir.name}: {index}  (open it in a browser; it works offline)")
    return 0


def cmd_compare(args) -> int:
    from vaebench.report.html import suite_order
    from vaebench.report.leaderboard import run_table
    from vaebench.report.stats import format_comparisons, paired_comparisons, score_columns

    for suite_dir in _suite_dirs(Path(args.results_dir)):
        runs = run_table(suite_dir)
        if runs.empty:
            print(f"== {suite_dir.name}: no finished runs yet")
            continue
        print(f"== {suite_dir.name}")
        for score in args.score or score_columns(runs):
            table = paired_comparisons(runs, score, args.reference, order=suite_order(suite_dir))
            print(format_comparisons(table, score) + "\n")
    return 0


def cmd_status(args) -> int:
    from vaebench.registry import EXECUTORS
    from vaebench.report.leaderboard import suite_summary
    from vaebench.runner.store import RunStore

    for suite_dir in _suite_dirs(Path(args.results_dir)):
        _settle(suite_dir)
        summary, store = suite_summary(suite_dir), RunStore(suite_dir)
        c = summary["counts"]
        print(f"== {suite_dir.name}: {c['done']} done, {c['failed']} failed, "
              f"{c['started']} started (resume on the next run), {c['pending']} pending"
              + (f", {c['damaged']} damaged (finished again on the next run)" if c["damaged"] else ""))
        for d in summary["damaged"]:
            print(f"  damaged  {d.path}: {d.problem}")
        for rid, state in summary["states"].items():
            line = f"  {state:<8} {rid}"
            for held in filter(None, (e.obj.describe(store.run_dir(rid)) for e in EXECUTORS.entries())):
                line += f"  {held}"
            if state == "failed":
                fail = store.failure(rid)
                line += f"\n           reason: {fail['reason']}\n           traceback: {fail.get('traceback', '-')}"
            errors = store.metric_errors(rid) if state == "done" else {}
            for name, error in errors.items():
                line += f"\n           metric {name} failed: {error}"
            if (state not in ("done", "damaged") or errors) or args.verbose:
                print(line)
    return 0


def cmd_fid(args) -> int:
    from vaebench.metrics.fid import (feature_statistics, frechet_distance, make_extractor,
                                      reference_statistics)
    from vaebench.metrics.fid.images import load_image_folder
    from vaebench.registry import DATASETS
    from vaebench.runner.run import default_cache_dir, load_dataset
    from vaebench.runner.train import resolve_device

    if args.batch_size < 1:
        raise VaebenchError(f"--batch-size {args.batch_size}: give a positive number of images")
    device = resolve_device(args.device)  # a bad device stops before any work
    real_is_folder = Path(args.real).is_dir()
    if not real_is_folder and args.real not in DATASETS:
        raise VaebenchError(f"REAL {args.real!r} is neither a folder nor a dataset; give a folder "
                            f"of images or one of: {', '.join(e.name for e in DATASETS.entries())}")
    if not real_is_folder and args.dataset not in (None, args.real):
        raise VaebenchError(f"--dataset {args.dataset} contradicts REAL {args.real}: when REAL is "
                            f"a dataset, its own extractor is used; drop --dataset")
    data_root, cache_dir = _data_root(args.data_root), default_cache_dir()
    name = args.real if not real_is_folder else (args.dataset or "mnist")
    dataset = None
    if not real_is_folder or args.extractor == "domain":
        dataset = load_dataset(name, {}, data_root)
    if args.extractor == "domain":  # files become images of the dataset's channels and size
        channels, size = dataset.image_shape[0], tuple(dataset.image_shape[1:])
    else:  # as pytorch-fid's CLI: RGB, resized by the network
        channels, size = 3, None
    # images first: a damaged file stops before an extractor is built (or trained)
    fake_images = load_image_folder(args.fake_dir, channels, size)
    real_images = load_image_folder(args.real, channels, size) if real_is_folder else None
    extractor = make_extractor(args.extractor, dataset, cache_dir, data_root, args.fid_weights)
    extractor.to(device)
    fake = feature_statistics(fake_images, extractor, args.batch_size)
    if real_is_folder:
        real = feature_statistics(real_images, extractor, args.batch_size)
        real_what = f"{args.real} ({real.num_images} images)"
    else:
        real, _ = reference_statistics(dataset, extractor, dataset.num_examples("test"), cache_dir,
                                       args.batch_size)
        real_what = f"{name}'s test split ({real.num_images} images)"
    column = f"fid_{extractor.name}"
    value = frechet_distance(real, fake)
    if args.json:
        print(json.dumps({column: value, "real": real_what, "fake": str(args.fake_dir),
                          "num_real": real.num_images, "num_fake": fake.num_images,
                          "extractor": extractor.info}, default=str))
    else:
        what = (f"{name}'s domain classifier, not Inception FID" if args.extractor == "domain"
                else "pytorch-fid Inception pool3")
        print(f"{column} = {value:.4f}  ({what}; real: {real_what}; fake: {args.fake_dir} "
              f"({fake.num_images} images))")
    return 0


def _shared_run_options(r) -> None:
    from vaebench.registry import EXECUTORS

    r.add_argument("suite", metavar="SUITE.yaml", help="suite file, e.g. suites/quickstart.yaml")
    r.add_argument("--results", metavar="DIR", help="results folder (default: the suite's results_dir, "
                                                     "'results')")
    r.add_argument("--data-root", metavar="DIR", help="where datasets live (default: $VAEBENCH_DATA, "
                                                       "else the suite's data_root, else ./data)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a suite key (YAML value), e.g. --set train.steps=200 "
                        "--set 'seeds=[0]'; repeatable")
    r.add_argument("--dry-run", action="store_true", help="print the run table and exit; train nothing")
    r.add_argument("--max-runs", type=int, metavar="N",
                   help="refuse suites that expand to more than N runs (default: the suite's "
                        "max_runs key, else 10,000)")
    r.add_argument("--executor", metavar="NAME", default="local",
                   help=f"where runs execute: {', '.join(e.name for e in EXECUTORS.entries())} "
                        f"(default: local; see `vaebench list executors`)")
    r.add_argument("--wait", action="store_true",
                   help="with an executor that queues runs (slurm): block until they end, then "
                        "write the leaderboard")
    r.add_argument("--fid-weights", metavar="PATH", help="Inception weights file for FID "
                                                          "(pt_inception-2015-12-05-6726825d.pth)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--no-estimate", action="store_true",
                   help="with --dry-run: skip the probe of each variant's step time")
    r.add_argument("--no-report", action="store_true",
                   help="do not write the HTML report (RESULTS/<suite>/report/) after the runs")
    for e in EXECUTORS.entries():
        e.obj.add_options(r.add_argument_group(f"--executor {e.name}"))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vaebench", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Train, evaluate and compare VAE variants from a suite YAML "
                    "(models x hyperparameters x datasets x seeds).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="expand a suite and run it (resumes; skips what is done)",
                       description="Expand SUITE into runs, train the ones not trained yet (started "
                                   "runs resume from their checkpoint), evaluate what the suite asks "
                                   "that is missing, then write RESULTS/<suite>/leaderboard.csv and "
                                   "print it. Exits 1 if a run failed.")
    _shared_run_options(r)
    r.set_defaults(func=cmd_run)

    ev = sub.add_parser("evaluate", help="evaluate finished trainings for what the suite asks "
                                         "that is missing (never trains)",
                        description="For every run of SUITE whose training is finished, compute each "
                                    "evaluation the suite asks for that has no record yet (metric, "
                                    "params, evaluation seed): a metric added to or changed in a "
                                    "finished suite is computed alone, and nothing is retrained. Array "
                                    "metrics are answered from each run's kept code table without "
                                    "loading the model. Then write the leaderboard. Exits 1 if a run failed.")
    _shared_run_options(ev)
    ev.add_argument("--metrics", nargs="+", metavar="NAME",
                    help="only these of the suite's metrics (default: every missing one)")
    ev.set_defaults(func=cmd_evaluate)

    rep = sub.add_parser("report", help="write a static HTML report of a suite (opens offline)",
                         description="Leaderboard with 95%% bootstrap CIs (sortable), calibration "
                                     "baselines, mean ranks, paired comparisons, suite pictures, one "
                                     "page per run (config, scores, curves, traversals, grids), failed "
                                     "runs. Self-contained: every picture is copied into the folder.")
    rep.add_argument("results_dir", metavar="RESULTS_DIR", help="e.g. results/quickstart")
    rep.add_argument("-o", "--output", metavar="DIR", help="default: RESULTS_DIR/report")
    rep.add_argument("--reference", metavar="CONFIG", help="reference of the paired comparisons: a "
                     "model with one configuration (vae) or a label ('beta_vae beta=4.0'); "
                     "default: the suite's first model")
    rep.add_argument("--score", action="append", metavar="NAME",
                     help="scores to show (repeatable; default: every score)")
    rep.add_argument("--data-root", metavar="DIR", help="where datasets live, for traversals and "
                     "baselines (default: $VAEBENCH_DATA, else ./data)")
    rep.add_argument("--no-baselines", action="store_true", help="skip the calibration baselines")
    rep.set_defaults(func=cmd_report)

    cmp_ = sub.add_parser("compare", help="paired comparisons of every configuration against a reference",
                          description="For each score: every configuration minus the reference over "
                                      "the seeds both have, the mean difference with its 95%% bootstrap "
                                      "CI, a Wilcoxon signed-rank test (from 6 pairs; else a paired "
                                      "bootstrap) and Holm's correction across that score's comparisons.")
    cmp_.add_argument("results_dir", metavar="RESULTS_DIR", help="e.g. results/quickstart")
    cmp_.add_argument("--reference", metavar="CONFIG", help="a model with one configuration (vae) "
                      "or a label ('beta_vae beta=4.0'); default: the suite's first model")
    cmp_.add_argument("--score", action="append", metavar="NAME",
                      help="score to compare (repeatable; default: every score)")
    cmp_.set_defaults(func=cmd_compare)

    lst = sub.add_parser("list", help="list registered models, datasets, metrics or executors")
    lst.add_argument("kind", choices=["models", "datasets", "metrics", "executors"])
    lst.set_defaults(func=cmd_list)

    lb = sub.add_parser("leaderboard", help="aggregate finished runs into a leaderboard CSV",
                        description="Mean and std over seeds of every metric and cost column, one row "
                                    "per (dataset, model, hyperparameters).")
    lb.add_argument("results_dir", metavar="RESULTS_DIR", help="e.g. results/quickstart")
    lb.add_argument("-o", "--output", metavar="CSV", help="default: RESULTS_DIR/leaderboard.csv")
    lb.add_argument("--sort-by", metavar="METRIC", help="sort by this metric's mean (best first)")
    lb.set_defaults(func=cmd_leaderboard)

    st = sub.add_parser("status", help="how many runs are done / failed / pending, and why runs failed")
    st.add_argument("results_dir", metavar="RESULTS_DIR", help="e.g. results/quickstart")
    st.add_argument("-v", "--verbose", action="store_true", help="list finished runs too")
    st.set_defaults(func=cmd_status)

    f = sub.add_parser(
        "fid", help="FID between a folder of images and a dataset's test split or another folder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Frechet distance between the images in FAKE_DIR and REAL (a dataset's whole "
                    "test split, or a folder of images), like pytorch-fid's CLI.\n\n"
                    "--extractor domain (default, offline): features of vaebench's classifier of "
                    "one dataset, so the\nfiles are read as that dataset's images (grey for "
                    "MNIST and dSprites) and resized to its size.\nThe dataset is REAL when REAL "
                    "is a dataset name, else --dataset (default mnist). The\nnumber is "
                    "fid_domain: comparable across vaebench runs, not to Inception FID in papers."
                    "\n--extractor inception: pytorch-fid's Inception pool3 features (RGB, "
                    "resized to 299 by the\nnetwork); its weights come from the torch hub cache "
                    "or --fid-weights.\n\nExtractors and the test split's statistics are cached "
                    "in $VAEBENCH_CACHE (default ~/.cache/vaebench).",
        epilog="examples:\n  vaebench fid mnist samples/\n  vaebench fid real_pngs/ samples/ "
               "--dataset mnist\n  vaebench fid mnist samples/ --extractor inception "
               "--fid-weights pt_inception-2015-12-05-6726825d.pth")
    f.add_argument("real", metavar="REAL", help="a dataset name (its test split) or a folder of images")
    f.add_argument("fake_dir", metavar="FAKE_DIR", help="a folder of images (png, jpg, ...)")
    f.add_argument("--extractor", choices=["domain", "inception"], default="domain",
                   help="feature extractor (default: domain)")
    f.add_argument("--dataset", metavar="NAME", help="with a folder as REAL and --extractor domain: "
                                                      "whose extractor (default: mnist)")
    f.add_argument("--fid-weights", metavar="PATH", help="Inception weights file "
                                                          "(pt_inception-2015-12-05-6726825d.pth)")
    f.add_argument("--data-root", metavar="DIR", help="where datasets live (default: $VAEBENCH_DATA, "
                                                       "else ./data)")
    f.add_argument("--batch-size", type=int, default=100, metavar="N", help="images per forward pass")
    f.add_argument("--device", default="auto", help="auto (GPU if there is one), cpu or cuda")
    f.add_argument("--json", action="store_true", help="print one JSON object instead of a line")
    f.set_defaults(func=cmd_fid)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VaebenchError as e:
        print(f"vaebench: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in ENVIRONMENT_ERRNOS:
            raise
        where = f" {e.filename}" if e.filename else ""
        print(f"vaebench: error: cannot write or read{where}: {e.strerror} (errno "
              f"{errno.errorcode.get(e.errno, e.errno)}). Free space, fix the folder's permissions "
              f"or give another folder, then run the command again.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nvaebench: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
