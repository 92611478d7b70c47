"""Point a demo database at the local demo mailbox (used by ``./dev run``).

Creates or updates, idempotently:
- an outgoing mail server on the SMTP sink, so whatever Odoo sends lands in its Maildir;
- an Incoming Mail Server "Demo support mailbox" reading support@example.com on the
  local Dovecot into tickets, confirmed with a real IMAP login;
- a one-minute fetch interval, so a demo mail becomes a ticket quickly.
"""

import argparse
import sys

from mailbed import wait_for_port  # tools/, as this script

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry
from odoo.tools import config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--addons-path", required=True)
    parser.add_argument("--db-user", required=True)
    parser.add_argument("--imap-port", type=int, default=10143)
    parser.add_argument("--smtp-port", type=int, default=10025)
    parser.add_argument("--login", default="support@example.com")
    parser.add_argument("--password", default="support")
    args = parser.parse_args()
    config.parse_config(
        [
            "-d",
            args.db,
            f"--addons-path={args.addons_path}",
            "--db_host=127.0.0.1",
            f"--db_user={args.db_user}",
            "--log-level=warn",
        ]
    )
    wait_for_port(args.imap_port)
    wait_for_port(args.smtp_port)
    with Registry(args.db).cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        smtp_vals = {
            "name": "Demo SMTP sink",
            "smtp_host": "127.0.0.1",
            "smtp_port": args.smtp_port,
            "smtp_encryption": "none",
        }
        smtp = env["ir.mail_server"].search([("name", "=", smtp_vals["name"])])
        if smtp:
            smtp.write(smtp_vals)
        else:
            env["ir.mail_server"].create(smtp_vals)

        imap_vals = {
            "name": "Demo support mailbox",
            "server_type": "imap",
            "server": "127.0.0.1",
            "port": args.imap_port,
            "is_ssl": False,
            "user": args.login,
            "password": args.password,
            "object_id": env["ir.model"]._get_id("mail.ticket"),
            # the demo's Customer Care team takes its mail (its members in turn)
            "ticket_team_id": (
                env.ref("mail_ticket.mail_ticket_team_customer_care", raise_if_not_found=False)
                or env["mail.ticket.team"]
            ).id,
        }
        server = env["fetchmail.server"].search([("name", "=", imap_vals["name"])])
        if server:
            server.set_draft()
            server.write(imap_vals)
        else:
            server = env["fetchmail.server"].create(imap_vals)
        server.button_confirm_login()  # activates its own job, every minute by default
        # the first customers write German: with German installed, a German mail's new
        # contact speaks German and gets the German acknowledgement
        if not env["res.lang"]._get_code("de_DE"):
            env["res.lang"]._activate_lang("de_DE")
            env["ir.module.module"].search([("state", "=", "installed")])._update_translations(
                "de_DE"
            )
    print(f"demo mailbox {args.login} on 127.0.0.1:{args.imap_port} feeds tickets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
