"""A ticket mailbox whose password is kept out of the database, where operators keep
secrets: in Odoo's configuration file or in the environment of the Odoo process.

Logs in to the real Dovecot through "Test & Confirm" and Odoo's fetchmail cron.
"""

import logging
import re
import secrets

import pytest
from mailbed import Dovecot
from odoo_env import make_mail

from odoo.exceptions import UserError


def secret_key(imap_account):
    return re.sub(r"[^a-z0-9_]", "_", imap_account.login.lower())


def ticket_names(odoo_db, server_id):
    with odoo_db.env() as env:
        return env["mail.ticket"].search([("fetchmail_server_id", "=", server_id)]).mapped("name")


def test_password_from_the_environment(odoo_db, ticket_server, imap_account, monkeypatch, caplog):
    key = secret_key(imap_account)
    variable = f"MAIL_TICKET_PASSWORD_{key.upper()}"
    monkeypatch.setenv(variable, imap_account.password)
    # "Test & Confirm" logs in with it
    server_id = ticket_server(password=False, ticket_secret_key=key)
    imap_account.append(make_mail("Passwort aus der Umgebung"))
    odoo_db.run_cron()

    assert ticket_names(odoo_db, server_id) == ["Passwort aus der Umgebung"]
    with odoo_db.env() as env:
        env.cr.execute("SELECT password FROM fetchmail_server WHERE id = %s", [server_id])
        assert env.cr.fetchone() == (None,), "the database holds no password"

    # a wrong password: the errors and the log say so, without the password
    wrong = f"falsch-{imap_account.password}"
    monkeypatch.setenv(variable, wrong)
    caplog.set_level(logging.INFO, logger="odoo")
    imap_account.append(make_mail("Nach dem Passwortwechsel"))
    odoo_db.run_cron()
    with odoo_db.env() as env:
        server = env["fetchmail.server"].browse(server_id)
        run = server.ticket_fetch_run_ids[:1]
        assert "AUTHENTICATIONFAILED" in run.error
        assert "AUTHENTICATIONFAILED" in server.error_message
        assert "General failure when fetching mail" in caplog.text
        errors = [run.error, server.error_message, caplog.text]
        server.set_draft()
        with pytest.raises(UserError) as caught:
            server.button_confirm_login()
        errors.append(str(caught.value))
        assert "AUTHENTICATIONFAILED" in errors[-1]
    assert all(wrong not in text and imap_account.password not in text for text in errors)
    assert ticket_names(odoo_db, server_id) == ["Passwort aus der Umgebung"]


def test_password_missing_from_the_configuration(odoo_db, ticket_server, imap_account):
    key = secret_key(imap_account)
    with pytest.raises(UserError, match=f"MAIL_TICKET_PASSWORD_{key.upper()}"):
        ticket_server(password=False, ticket_secret_key=key)


def test_password_from_the_odoo_configuration_file(
    odoo_db, ticket_server, imap_account, monkeypatch, tmp_path
):
    key = secret_key(imap_account)
    monkeypatch.setenv(f"MAIL_TICKET_PASSWORD_{key.upper()}", imap_account.password)
    server_id = ticket_server(password=False, ticket_secret_key=key)
    monkeypatch.delenv(f"MAIL_TICKET_PASSWORD_{key.upper()}")
    conf = tmp_path / "odoo.conf"
    conf.write_text(f"[options]\nmail_ticket_password_{key} = {imap_account.password}\n")
    monkeypatch.setenv("ODOO_RC", str(conf))  # read by the Odoo process started below
    imap_account.append(make_mail("Passwort aus der odoo.conf"))

    worker = odoo_db.spawn("fetch-now", server_id)
    output = worker.communicate(timeout=300)[0].decode(errors="replace")
    assert worker.returncode == 0, output[-3000:]
    assert ticket_names(odoo_db, server_id) == ["Passwort aus der odoo.conf"]
    assert imap_account.password not in output


def test_password_that_is_not_ascii(odoo_db, ticket_server, dovecot, imap_account):
    """IMAP's LOGIN command cannot carry it: the mailbox logs in with AUTHENTICATE
    PLAIN (UTF-8), through Test & Confirm and the fetch."""
    password = f"Grüße-€-{secrets.token_hex(4)}"
    login = f"umlaut-{secrets.token_hex(3)}@example.com"
    dovecot.add_user(login, password)
    account = dovecot.account(login, password)
    server_id = ticket_server(user=login, password=password)
    account.append(make_mail("Passwort mit Umlaut", to=login))
    odoo_db.run_cron()
    assert ticket_names(odoo_db, server_id) == ["Passwort mit Umlaut"]


def test_password_that_is_not_ascii_without_plain(odoo_db, ticket_server, mailbed_dir):
    """A server that offers no way to log in with it: the error says so, and nowhere is
    the password quoted (imaplib's encoding error names the character)."""
    with Dovecot(mailbed_dir / "imap-login-only", ssl=False, auth_mechanisms="login") as server:
        password = f"geheim-ß{secrets.token_hex(4)}"
        login = f"login-only-{secrets.token_hex(3)}@example.com"
        server.add_user(login, password)
        with pytest.raises(UserError) as caught:
            ticket_server(user=login, password=password, server=server.host, port=server.port)
        message = str(caught.value)
        assert "AUTHENTICATE PLAIN" in message and "ASCII" in message
        assert "ß" not in message and password not in message
