"""A separate Odoo process for the end-to-end tests: fetch mail as the cron or a user does.

    python tests/odoo_worker.py --db DB --addons-path P [--db-host H --db-port N --db-user U]
        cron             run the fetch jobs as the scheduler would: each ticket mailbox's
                         own job, then "Mail: Fetchmail Service" for the other servers
        job ID           run the own job of ticket mailbox ID only (one cron worker)
        fetch-now ID     press "Fetch Now" on mail server ID
        drain ID         run the fetch jobs until mail server ID's last fetch left nothing

The tests kill it with SIGKILL in the middle of a run, or run two at once.
"""

import argparse
import sys

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry
from odoo.tools import config


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--addons-path", required=True)
    parser.add_argument("--db-host", default="")
    parser.add_argument("--db-port", default="")
    parser.add_argument("--db-user", default="")
    parser.add_argument("command", choices=["cron", "job", "fetch-now", "drain"])
    parser.add_argument("server_id", nargs="?", type=int)
    args = parser.parse_args()

    options = ["-d", args.db, f"--addons-path={args.addons_path}", "--log-level=info"]
    options += [f"--db_host={args.db_host}"] if args.db_host else []
    options += [f"--db_port={args.db_port}"] if args.db_port else []
    options += [f"--db_user={args.db_user}"] if args.db_user else []
    config.parse_config(options, setup_logging=True)
    registry = Registry(args.db)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        if args.command == "cron":
            run_fetch_jobs(env)
        elif args.command == "job":
            env["fetchmail.server"].browse(args.server_id).ticket_cron_id.method_direct_trigger()
        elif args.command == "drain":
            drain(env, args.server_id)
        else:
            env["fetchmail.server"].browse(args.server_id).fetch_mail()
    print("worker done", flush=True)


def run_fetch_jobs(env):
    """Run the jobs that fetch mail, as the scheduler would: the own job of each ticket
    mailbox, then the shared "Mail: Fetchmail Service" (which skips those mailboxes)."""
    mailboxes = env["fetchmail.server"].search([("ticket_cron_id.active", "=", True)])
    for job in (*mailboxes.ticket_cron_id, env.ref("mail.ir_cron_mail_gateway_action")):
        job.method_direct_trigger()


def drain(env, server_id, max_runs=30):
    """Run the fetch jobs until the server's last fetch left no mail behind."""
    for runs in range(1, max_runs + 1):
        run_fetch_jobs(env)
        env.cr.commit()  # a new snapshot, that sees what the run committed
        env.invalidate_all()
        last_run = env["fetchmail.server"].browse(server_id).ticket_fetch_run_ids[:1]
        if last_run and not last_run.error and not last_run.left_count:
            print(f"drained in {runs} run(s)", flush=True)
            return
    raise SystemExit(f"mail server {server_id} does not drain in {max_runs} cron runs")


if __name__ == "__main__":
    sys.exit(main())
