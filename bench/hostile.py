"""Cost of hostile mails in Odoo's gateway: time and peak memory of each, one process each.

    PYTHONPATH=/opt/odoo-19.0 /opt/mail_ticket/venv/bin/python bench/hostile.py \\
        --addons-path /opt/odoo-19.0/addons,$PWD --db-user mail_ticket [--db bench_hostile]

Each mail of tests/hostile_mail.py (and an ordinary mail, for scale) goes through
``mail.thread.message_process`` with the ticket model as fallback, as the fetchmail cron
calls it, in a fresh worker process: the time is the wall time of that call, the memory
the growth of the process's peak RSS (``getrusage``) over what the loaded registry
already took. Nothing is committed. See bench/README.md.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the hostile mails and make_mail of the tests, the mail test bed they import (tools/)
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "tools")]

from hostile_mail import HOSTILE, HOSTILE_HEADERS, big_body, big_body_without_charset  # noqa: E402
from odoo_options import odoo_options as database_options  # noqa: E402 (bench/, as this script)


def mails():
    from odoo_env import make_mail  # noqa: PLC0415 - imports Odoo: workers only

    return {
        "ordinary mail": lambda: make_mail("Drucker druckt nicht"),
        "20 MB body": big_body,
        "20 MB 8-bit, no charset": big_body_without_charset,
        **{name: build for name, (build, _fragment) in HOSTILE.items()},
        **HOSTILE_HEADERS,
    }


def odoo_options(args):
    return [*database_options(args), "--log-level=warn"]


def worker(args):
    from odoo import SUPERUSER_ID, api  # noqa: PLC0415
    from odoo.modules.registry import Registry  # noqa: PLC0415
    from odoo.tools import config  # noqa: PLC0415

    config.parse_config(odoo_options(args), setup_logging=True)
    raw = mails()[args.worker]()
    registry = Registry(args.db)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        gateway = env["mail.thread"].with_context(mail_notify_force_send=False)
        gateway.message_process("mail.ticket", make_mail_warm())  # load what a run has loaded
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        cpu_started = time.process_time()
        error = None
        try:
            thread_id = gateway.message_process("mail.ticket", raw)
        except Exception as exc:  # reported, as the fetch records it
            thread_id, error = False, f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cr.rollback()
    print(
        json.dumps(
            {
                "size": len(raw),
                "seconds": elapsed,
                "cpu": cpu,
                "peak_mb": (peak - baseline) / 1024,
                "outcome": error or ("ticket" if thread_id else "ignored"),
            }
        )
    )


#: the trusted receiving server of the benchmark's mailbox, and the tickets its mails
#: may name (the 20,000 tags of a subject are looked up among them)
TRUSTED_MX = "mx.support.example.com"
TICKETS = 2000


def prepare(args):
    """Give the database its trusted mail server and TICKETS tickets (committed once)."""
    from odoo import SUPERUSER_ID, api  # noqa: PLC0415
    from odoo.modules.registry import Registry  # noqa: PLC0415
    from odoo.tools import config  # noqa: PLC0415

    config.parse_config(odoo_options(args), setup_logging=True)
    with Registry(args.db).cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env["ir.config_parameter"].set_param("mail_ticket.authserv_id", TRUSTED_MX)
        missing = TICKETS - env["mail.ticket"].search_count([])
        if missing > 0:
            env["mail.ticket"].create(
                [{"name": f"Vorhandenes Ticket {number}"} for number in range(missing)]
            )


def make_mail_warm():
    from odoo_env import make_mail  # noqa: PLC0415

    return make_mail("Aufwärmen")


def ensure_db(args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    check = subprocess.run(
        [
            "psql",
            "-U",
            args.db_user or os.environ.get("USER", ""),
            "-d",
            args.db,
            "-tAc",
            "SELECT 1 FROM ir_module_module WHERE name = 'mail_ticket' AND state = 'installed'",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = check.stdout.strip() == "1"
    # the code measured may be newer than the database: bring it up to date
    print(f"{'updating' if installed else 'installing'} mail_ticket in {args.db}", file=sys.stderr)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "odoo",
            *odoo_options(args),
            "-u" if installed else "-i",
            "mail_ticket",
            "--stop-after-init",
        ],
        check=True,
        env=env,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="bench_hostile")
    parser.add_argument("--addons-path", required=True)
    parser.add_argument("--db-host", default=os.environ.get("PGHOST", ""))
    parser.add_argument("--db-port", default=os.environ.get("PGPORT", ""))
    parser.add_argument("--db-user", default="")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="*", help="run the mails whose name holds one of these")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per mail at most")
    args = parser.parse_args()
    if args.worker == "(prepare)":
        return prepare(args)
    if args.worker:
        return worker(args)
    ensure_db(args)
    subprocess.run(
        [sys.executable, __file__, *sys.argv[1:], "--worker", "(prepare)"],
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    print(f"{'mail':32} {'size':>10} {'time (s)':>9} {'CPU (s)':>8} {'peak RSS +MB':>13}  outcome")
    worst = 0.0
    for name in mails():
        if args.only and not any(word.lower() in name.lower() for word in args.only):
            continue
        try:
            result = subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--worker", name],
                capture_output=True,
                text=True,
                check=False,
                env=env,
                timeout=args.timeout,
            )
        except subprocess.TimeoutExpired:
            print(f"{name:32} over {args.timeout} s: stopped")
            worst = float("inf")
            continue
        lines = result.stdout.strip().splitlines()
        if result.returncode or not lines:
            print(f"{name:32} worker failed: {result.stderr.strip()[-300:]}")
            continue
        row = json.loads(lines[-1])
        if name in HOSTILE_HEADERS:
            worst = max(worst, row["cpu"])
        print(
            f"{name:32} {row['size']:>10,} {row['seconds']:>9.2f} {row['cpu']:>8.2f}"
            f" {row['peak_mb']:>13.1f}  {row['outcome'][:60]}"
        )
    print(f"worst CPU time of a mail with adversarial headers: {worst:.2f} s")
    repair_cost()
    return 0


def repair_cost(rounds=2000):
    """What the repair costs a well-formed mail: repair_message alone, parsing excluded."""
    import email  # noqa: PLC0415
    from email.policy import SMTP  # noqa: PLC0415

    sys.path.insert(0, str(HERE.parent / "mail_ticket" / "tools"))
    from mail_repair import repair_message  # noqa: PLC0415 - pure Python, no Odoo needed
    from odoo_env import make_mail  # noqa: PLC0415

    for name, raw in (
        ("ordinary mail", make_mail("Drucker druckt nicht")),
        ("with attachment", make_mail("Scan", attachment=("scan.pdf", b"%PDF-1.4" * 1000))),
    ):
        messages = [email.message_from_bytes(raw, policy=SMTP) for _ in range(rounds)]
        started = time.perf_counter()
        for message in messages:
            repair_message(message)
        each = (time.perf_counter() - started) / rounds
        print(f"repair_message on a well-formed {name}: {each * 1e6:.0f} µs")


if __name__ == "__main__":
    sys.exit(main())
