"""Ingestion benchmark: mail_ticket against OCA helpdesk_mgmt, end to end from Dovecot.

    ./dev bench [--quick] [--only e2e,process,mix,scale,cron] [options]
    python -m bench.ingest --odoo-src /opt/odoo-19.0 --addons-path ... (from the repository)

See bench/README.md for the scenarios and how to read bench/RESULTS.md.
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from . import corpus as corpus_mod
from . import helpdesk, report, scenarios
from .mailbox import Dovecot, SmtpSink

BENCH_DIR = Path(__file__).resolve().parents[1]
ALL = ["e2e", "process", "mix", "scale", "cron"]


def log(text):
    print(f"[bench {datetime.now(timezone.utc):%H:%M:%S}] {text}", file=sys.stderr, flush=True)


def parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small run (~3 min): 60 mails, 2 repetitions, 1,000/10,000 tickets",
    )
    p.add_argument("--only", default=",".join(ALL), help=f"scenarios, of {','.join(ALL)}")
    p.add_argument("--mails", type=int, help="mails of the e2e/process/mix corpora (300)")
    p.add_argument("--reps", type=int, help="repetitions of e2e, process and mix (3)")
    p.add_argument("--scale", help="existing tickets, comma-separated (1000,100000)")
    p.add_argument("--scale-mails", type=int, help="mails per database size (150)")
    p.add_argument("--cron-mails", type=int, help="mails per mailbox in the cron scenario (150)")
    p.add_argument("--cron-reps", type=int, default=2, help="runs per thread count (2)")
    p.add_argument("--views-repeat", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--odoo-src", default=os.environ.get("ODOO_SRC", "/opt/odoo-19.0"))
    p.add_argument("--addons-path", help="for mail_ticket (default ODOO/addons,REPO)")
    p.add_argument(
        "--helpdesk-path",
        help="directory holding helpdesk_mgmt/ (else env, /opt/oca-helpdesk, the cache, PyPI)",
    )
    p.add_argument("--no-download", action="store_true", help="never fetch helpdesk_mgmt")
    p.add_argument("--db-host", default=os.environ.get("PGHOST", "127.0.0.1"))
    p.add_argument("--db-port", default=os.environ.get("PGPORT", "5432"))
    p.add_argument("--db-user", default=os.environ.get("PGUSER", "mail_ticket"))
    p.add_argument("--db-prefix", default="bench_", help="of every database made (bench_)")
    p.add_argument("--reuse", action="store_true", help="keep installed template databases")
    p.add_argument("--keep-dbs", action="store_true", help="do not drop the measured databases")
    p.add_argument("--log-level", default="info")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--results", default=str(BENCH_DIR / "RESULTS.md"))
    p.add_argument(
        "--profile",
        action="store_true",
        help="message_process under cProfile, with query origins, into the results folder "
        "(profile-*.txt): its timings are the profiler's, not figures to quote",
    )
    p.add_argument("--note", help="a line at the top of RESULTS.md (e.g. the machine was busy)")
    p.add_argument(
        "--from-json",
        metavar="RESULTS_JSON",
        help="measure nothing: write RESULTS.md and the plot again from a run's results.json",
    )
    args = p.parse_args(argv)
    quick = args.quick
    args.mails = args.mails or (60 if quick else 300)
    args.reps = args.reps or (2 if quick else 3)
    sizes = args.scale or ("1000,10000" if quick else "1000,100000")
    args.scale = sorted(int(x) for x in sizes.split(","))
    args.scale_mails = args.scale_mails or (45 if quick else 150)
    args.cron_mails = args.cron_mails or (45 if quick else 150)
    args.addons_path = args.addons_path or f"{args.odoo_src}/addons,{BENCH_DIR.parent}"
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(ALL)
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(sorted(unknown))}")
    return args


def _user_args(argv):
    """The options as typed after ``./dev bench`` (without those ./dev adds first)."""
    if os.environ.get("MAIL_TICKET_DEV_BENCH"):
        argv = list(argv)
        for option in ("--odoo-src", "--addons-path", "--db-user"):
            if argv[:1] == [option]:
                argv = argv[2:]
    return argv


def _busy_note(load_start, cores):
    """A warning for RESULTS.md when other work was running when it started (1-minute
    load average; at the end it is the benchmark's own load)."""
    worst = load_start[0]
    if worst > 0.5 * (cores or 1):
        return (
            f"Measured on a busy machine (1-minute load average {worst:.1f} on {cores} "
            "cores, other work running): compare the products within this run only, and rerun "
            "on a quiet machine before quoting figures."
        )
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text())
        if results.get("scale"):
            report.plot(results["scale"], Path(args.results).parent / report.PLOT_NAME)
        report.write(results, args.results)
        log(f"wrote {args.results} from {args.from_json}")
        return
    started = time.monotonic()
    load_start = os.getloadavg()
    # the code measured, before anything else is committed
    addon_root = report.addon_root(args.addons_path)
    commit = report.git_commit(addon_root)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    workdir = BENCH_DIR / "results" / stamp
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"results and logs in {workdir}")

    helpdesk_dir = manifest = None
    if {"e2e", "process", "mix"} & set(args.only):
        roots = [*args.addons_path.split(","), f"{args.odoo_src}/odoo/addons"]
        helpdesk_dir, manifest, why = helpdesk.locate(
            args.helpdesk_path, args.python, roots, log, fetch=not args.no_download
        )
        if why:
            log(f"COMPARISON SKIPPED: {why}")
        else:
            log(f"helpdesk_mgmt {manifest['version']} from {helpdesk_dir}")

    corpus = corpus_mod.build(args.mails, seed=args.seed, token="m")
    scratch = Path(tempfile.mkdtemp(prefix="bench-mail-"))
    os.chmod(scratch, 0o755)
    dovecot = Dovecot(scratch / "imap", ssl=False).start()
    sink = SmtpSink(scratch / "smtp").start()
    results = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "command": shlex.join(["./dev", "bench", *_user_args(argv)]),
        "seed": args.seed,
        "corpus": corpus_mod.describe(corpus),
        "note": args.note,
    }
    try:
        bench = scenarios.Bench(args, workdir, log, dovecot, sink, helpdesk_dir)
        results["install_seconds"] = bench.install_templates()
        if "e2e" in args.only:
            results["e2e"] = scenarios.e2e(bench, corpus, args.reps)
        if "process" in args.only:
            results["process"] = scenarios.process(bench, corpus, args.reps)
        if "mix" in args.only:
            mixed = corpus_mod.build(args.mails, seed=args.seed, token="x", mix=True)
            results["mix"] = scenarios.mix(bench, mixed, args.reps)
        if "scale" in args.only:
            results["scale"], results["views"] = scenarios.scale(
                bench, args.scale, args.scale_mails, args.seed, args.views_repeat
            )
        if "cron" in args.only:
            results["cron"] = scenarios.cron(bench, args.cron_mails, args.seed, args.cron_reps)
        results["outgoing"] = {**bench.outgoing, "sink": len(sink.messages())}
    finally:
        sink.stop()
        dovecot.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        (workdir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    odoo_version = subprocess.run(
        [args.python, "-c", "from odoo import release; print(release.version)"],
        env=bench.env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    results["machine"] = report.machine(
        bench.pg.version(),
        odoo_version,
        manifest,
        sys.version.split()[0],
        load_start,
        commit,
        addon_root,
    )
    results["seconds"] = time.monotonic() - started
    busy = _busy_note(load_start, os.cpu_count())
    results["note"] = " ".join(filter(None, [args.note, busy])) or None
    (workdir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    if results.get("scale"):
        report.plot(results["scale"], Path(args.results).parent / report.PLOT_NAME)
    report.write(results, args.results)
    log(f"wrote {args.results} in {results['seconds']:.0f} s")
    print(Path(args.results).read_text())


if __name__ == "__main__":
    main()
