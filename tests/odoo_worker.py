"""A separate Odoo process for the end-to-end tests: fetch mail as the cron or a user does.

    python tests/odoo_worker.py --db DB --addons-path P [--db-host H --db-port N --db-user U]
        cron             run "Mail: Fetchmail Service" as the scheduler would
        fetch-now ID     press "Fetch Now" on mail server ID

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
    parser.add_argument("command", choices=["cron", "fetch-now"])
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
            env.ref("mail.ir_cron_mail_gateway_action").method_direct_trigger()
        else:
            env["fetchmail.server"].browse(args.server_id).fetch_mail()
    print("worker done", flush=True)


if __name__ == "__main__":
    sys.exit(main())
