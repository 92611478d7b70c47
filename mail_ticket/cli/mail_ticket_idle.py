"""``odoo-bin mail_ticket_idle -c odoo.conf``: the push listener as a service of its own.

For deployments that keep it apart from the HTTP and cron processes (a systemd unit of its
own). It serves the databases the cron workers of that configuration serve (``db_name``,
else all, within ``dbfilter``) that have mail_ticket installed; several of them on one
database share the mailboxes through PostgreSQL advisory locks.

Odoo finds this command in ``<addon>/cli/<command>.py`` of its addons path: with the
addon in a directory of its own (not pip-installed), name it first:
``odoo-bin --addons-path=... mail_ticket_idle -c odoo.conf``.
"""

import signal

from odoo.cli.command import Command
from odoo.tools import config


class MailTicketIdle(Command):
    """Hold the ticket mailboxes in IMAP IDLE and fetch them as soon as mail arrives"""

    name = "mail_ticket_idle"

    def run(self, args):
        config.parse_config(args, setup_logging=True)
        from odoo.addons.mail_ticket.service.idle_listener import IdleListener  # noqa: PLC0415

        listener = IdleListener()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_args: listener.stop())
        listener.run()
