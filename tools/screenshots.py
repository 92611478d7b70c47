"""Take the screenshots of the store page and the README from a demo database.

``./dev screenshots`` installs mail_ticket with its demo data into a fresh database and
runs this script, which makes the pictures show what the addon really does:

1. starts the test bed's Dovecot and SMTP sink (tools/mailbed.py) on free loopback
   ports, puts a few customer mails into the support mailbox and points the database at
   it (tools/demo_setup.py);
2. fetches them with Odoo's fetchmail cron, answers one as an agent and fetches the
   customer's reply, so that tickets, their conversation, the fetched mails and the
   fetch history are real;
3. starts Odoo on ``--http-port`` (not 8069, which tests and ``./dev run`` use) and drives
   Debian's headless Chromium through the DevTools protocol (websocket-client) to take
   the pictures, written to mail_ticket/static/description/, and renders the store
   page's banner from tools/banner.html with the tickets picture in it.

Nothing is kept running afterwards; ``./dev screenshots`` drops the database.
"""

import argparse
import base64
import contextlib
import html
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import websocket
from mailbed import Dovecot, SmtpSink, free_port, wait_for_port  # tools/, as this script
from markupsafe import Markup

from odoo import SUPERUSER_ID, api
from odoo.fields import Command
from odoo.modules.registry import Registry
from odoo.tools import config

REPO = Path(__file__).resolve().parent.parent

OUT = REPO / "mail_ticket" / "static" / "description"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTH, HEIGHT = 1440, 900
BANNER_SIZE = (1120, 560)
SUPPORT = ("support@example.com", "support")
TIMEOUT = 90

CUSTOMER_MAILS = [
    (
        '"Sylvie Lelitre" <sylvie.lelitre@agrolait.example.com>',
        "Drucker im Lager druckt nur leere Seiten",
        "Guten Morgen,\n\nunser Etikettendrucker im Lager druckt seit heute nur leere "
        "Seiten. Der Versand steht still.\n\nViele Grüße\nSylvie Lelitre",
    ),
    (
        '"Tom Baker" <tom.baker@gemini-furniture.example.com>',
        "Cannot reset my password",
        "Hello,\n\nthe password reset mail never arrives, I checked the spam folder too."
        "\n\nThanks,\nTom",
    ),
    (
        '"Anna Schmidt" <anna.schmidt@beispiel.example.de>',
        "Rechnung 2026/0042: zwei Lizenzen berechnet",
        "Hallo,\n\nauf der Rechnung stehen zwei Lizenzen, bestellt haben wir eine.\n\nAnna Schmidt",
    ),
    (
        '"Marc Dubois" <marc.dubois@lumiere.example.fr>',
        "VPN connection drops every hour",
        "Hi,\n\nsince Monday our VPN connection drops every hour on the hour.\n\nMarc",
    ),
]
ANSWER = Markup(
    "<p>Guten Morgen Frau Lelitre,</p><p>bitte schalten Sie den Drucker einmal aus und "
    "wieder ein und prüfen Sie, ob die Etikettenrolle richtig herum eingelegt ist.</p>"
)
REPLY = "Danke, die Rolle war falsch eingelegt. Jetzt druckt er wieder!\n\nSylvie"


def mail(sender, subject, body, **headers):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT[0]
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now().astimezone())
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[1].rstrip(">"))
    for name, value in headers.items():
        msg[name] = value
    msg.set_content(body)
    paragraphs = "".join(
        "<p>{}</p>".format(html.escape(part).replace("\n", "<br/>")) for part in body.split("\n\n")
    )
    msg.add_alternative(f"<html><body>{paragraphs}</body></html>", subtype="html")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


# ------------------------------------------------------------------ demo content


def make_content(args, imap):
    """Real tickets from real mails; return what the pictures need."""
    for sender, subject, body in CUSTOMER_MAILS:
        imap.append(mail(sender, subject, body))
    subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "demo_setup.py"),
            "--db",
            args.db,
            "--addons-path",
            args.addons_path,
            "--db-user",
            args.db_user,
            "--imap-port",
            str(imap.port),
            "--smtp-port",
            str(args.smtp_port),
        ],
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    registry = Registry(args.db)

    def run_crons(env):
        # each ticket mailbox is read by its own job
        for job in env["fetchmail.server"].search([]).ticket_cron_id.filtered("active"):
            job.method_direct_trigger()
        env.ref("mail_ticket.ir_cron_mail_ticket_ack").method_direct_trigger()

    with registry.cursor() as cr:
        run_crons(api.Environment(cr, SUPERUSER_ID, {}))
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        printer = env["mail.ticket"].search([("name", "=", CUSTOMER_MAILS[0][1])])
        admin = env.ref("base.user_admin")
        printer.write(
            {
                "user_id": admin.id,
                "priority": "2",
                "stage_id": env.ref("mail_ticket.stage_in_progress").id,
                "tag_ids": [Command.set(env.ref("mail_ticket.mail_ticket_tag_printer").ids)],
            }
        )
        answer = printer.with_user(admin).message_post(
            body=ANSWER, message_type="comment", subtype_xmlid="mail.mt_comment"
        )
        customer_reply = mail(
            CUSTOMER_MAILS[0][0],
            f"Re: {printer.display_name}",
            REPLY,
            **{"In-Reply-To": answer.message_id, "References": answer.message_id},
        )
    imap.append(customer_reply)
    with registry.cursor() as cr:
        run_crons(api.Environment(cr, SUPERUSER_ID, {}))
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        printer = env["mail.ticket"].search([("name", "=", CUSTOMER_MAILS[0][1])])
        server = env["fetchmail.server"].search([("name", "=", "Demo support mailbox")])
        return {
            "ticket_id": printer.id,
            "portal_url": printer.get_portal_url(),
            "server_id": server.id,
        }


# ---------------------------------------------------------------------- browser


class Chromium:
    """Headless Chromium driven through the DevTools protocol."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="mail-ticket-chromium-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--hide-scrollbars",
             "--force-device-scale-factor=1", f"--window-size={WIDTH},{HEIGHT}",
             f"--user-data-dir={self.profile}", f"--remote-debugging-port={self.port}",
             "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.ws = websocket.create_connection(self._page_url(), timeout=TIMEOUT)
        self._ids = iter(range(1, 1 << 30))

    def _page_url(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list") as resp:
                    pages = [t for t in json.load(resp) if t["type"] == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.2)
        raise SystemExit("Chromium did not open its DevTools port")

    def call(self, method, **params):
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            answer = json.loads(self.ws.recv())
            if answer.get("id") == call_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def evaluate(self, expression):
        result = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, condition, what, settle=1.5):
        """Wait until the JavaScript ``condition`` holds and Odoo has stopped loading."""
        deadline = time.monotonic() + TIMEOUT
        check = f"!!({condition}) && !document.querySelector('.o_loading_indicator, .o_blockUI')"
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                if self.evaluate(check):
                    time.sleep(settle)  # animations (charts, chatter) come to rest
                    return
            time.sleep(0.25)
        raise SystemExit(f"timed out waiting for {what}")

    def open(self, url, condition, what):
        self.call("Page.navigate", url=url)
        time.sleep(0.5)
        self.wait_for(condition, what)

    def size(self, width, height):
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        print(f"wrote {path.relative_to(REPO)}")

    def close(self):
        with contextlib.suppress(Exception):
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def take_pictures(browser, base, content):
    browser.size(WIDTH, HEIGHT)
    # the customer, without an account, follows the link of a mail
    browser.open(base + content["portal_url"], "document.querySelector('#wrap')", "the portal")
    # the portal chatter lives in a shadow root
    browser.wait_for(
        "document.querySelector('#chatterRoot')?.shadowRoot?.querySelector('.o-mail-Message')",
        "the portal conversation",
    )
    browser.screenshot(OUT / "screenshot_portal.png")

    browser.open(f"{base}/web/login", "document.querySelector('input[name=login]')", "login")
    browser.evaluate(
        "document.querySelector('input[name=login]').value = 'admin';"
        "document.querySelector('input[name=password]').value = 'admin';"
        "document.querySelector('form.oe_login_form').submit()"
    )
    time.sleep(1)
    browser.wait_for("document.querySelector('.o_main_navbar')", "the backend")

    shots = [
        ("screenshot_tickets_kanban.png", "/odoo/tickets", ".o_kanban_record"),
        (
            "screenshot_ticket_form.png",
            f"/odoo/tickets/{content['ticket_id']}",
            ".o_form_view .o-mail-Message",
        ),
        (
            "screenshot_fetched_mails.png",
            "/odoo/action-mail_ticket.mail_ticket_inbound_action",
            ".o_list_view",
        ),
        ("screenshot_report.png", "/odoo/ticket-analysis", ".o_pivot table"),
        ("screenshot_team_dashboard.png", "/odoo/helpdesk-overview", ".o_kanban_record"),
        ("screenshot_sla_report.png", "/odoo/ticket-sla-analysis", ".o_pivot table"),
    ]
    for name, path, selector in shots:
        browser.open(base + path, f"document.querySelector('{selector}')", name)
        if name == "screenshot_fetched_mails.png":  # all of them, not only failed ones
            browser.evaluate("document.querySelector('.o_facet_remove').click()")
            browser.wait_for("document.querySelectorAll('.o_data_row').length > 1", "all mails")
        browser.screenshot(OUT / name)

    browser.open(
        f"{base}/odoo/action-mail.action_email_server_tree/{content['server_id']}",
        "document.querySelector('.o_form_view .o_notebook')",
        "the mailbox form",
    )
    browser.evaluate("document.querySelector('.o_notebook a[name=mail_ticket_history]').click()")
    browser.wait_for("document.querySelector('.o_notebook .o_data_row')", "the fetch history")
    browser.screenshot(OUT / "screenshot_mailbox.png")


def take_banner(browser):
    width, height = BANNER_SIZE
    browser.size(width, height)
    page = (REPO / "tools" / "banner.html").as_uri()
    browser.open(
        f"{page}?shot={(OUT / 'screenshot_tickets_kanban.png').as_uri()}",
        "document.fonts.status === 'loaded' && document.querySelector('img.shot').complete",
        "the banner",
    )
    browser.screenshot(OUT / "banner.png")


# ------------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--addons-path", required=True)
    parser.add_argument("--db-user", required=True)
    parser.add_argument("--http-port", type=int, default=8169)
    args = parser.parse_args()
    config.parse_config(
        [
            "-d",
            args.db,
            f"--addons-path={args.addons_path}",
            f"--db_host={os.environ.get('PGHOST', '127.0.0.1')}",
            f"--db_port={os.environ.get('PGPORT', '5432')}",
            f"--db_user={args.db_user}",
            "--log-level=warn",
        ],
        setup_logging=True,
    )
    work = Path(tempfile.mkdtemp(prefix="mail-ticket-screenshots-"))
    work.chmod(0o711)  # Dovecot's mail user must traverse it
    server = browser = None
    with (
        Dovecot(work / "imap") as dovecot,
        SmtpSink(work / "smtp") as smtp,
    ):
        try:
            dovecot.add_user(*SUPPORT)
            args.smtp_port = smtp.port
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", args.http_port)) == 0:
                    raise SystemExit(f"port {args.http_port} is taken: set another one")
            content = make_content(args, dovecot.account(*SUPPORT))
            server = subprocess.Popen(
                [sys.executable, "-m", "odoo", "-d", args.db, f"--addons-path={args.addons_path}",
                 f"--db_host={config['db_host']}", f"--db_port={config['db_port']}",
                 f"--db_user={args.db_user}", f"--db-filter=^{args.db}$",
                 "--http-interface=127.0.0.1", f"--http-port={args.http_port}",
                 "--max-cron-threads=0", "--log-level=warn", f"--logfile={work / 'odoo.log'}"],
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            wait_for_port(args.http_port, timeout=TIMEOUT)
            browser = Chromium()
            take_pictures(browser, f"http://127.0.0.1:{args.http_port}", content)
            take_banner(browser)
        finally:
            if browser:
                browser.close()
            if server:
                server.terminate()
                server.wait(30)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
