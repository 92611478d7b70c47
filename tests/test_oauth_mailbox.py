"""Microsoft 365 and Gmail support mailboxes: IMAP with OAuth 2.0 (XOAUTH2).

mail_ticket does not depend on Odoo's ``microsoft_outlook`` and ``google_gmail``; they
are installed with ``mail`` (auto_install) and add the server types ``outlook`` and
``gmail``, which log in with ``AUTHENTICATE XOAUTH2`` and an access token. Here the
mailbox is the test Dovecot over IMAPS, which checks every token against the
``oauth_tokens`` introspection endpoint on loopback, standing in for the provider; that
endpoint also serves the provider's token endpoint for Outlook's token renewal.
"""

import time

import pytest
from odoo_env import make_mail

FAR_FUTURE = int(time.time()) + 10 * 365 * 86400
PROVIDERS = {"outlook": "microsoft_outlook", "gmail": "google_gmail"}


@pytest.fixture
def oauth_server(ticket_server, imap_account, oauth_tokens):
    """Factory: a ticket mailbox of type ``outlook``/``gmail`` on the test account, logged
    in (Test & Confirm) with a valid access token; returns (server id, access token)."""
    if not imap_account.imaps_port:
        pytest.fail("the test Dovecot has no IMAPS port (openssl missing?)")

    def make(server_type, **vals):
        token = oauth_tokens.issue(imap_account.login)
        prefix = PROVIDERS[server_type]
        server_id = ticket_server(
            server_type=server_type,
            is_ssl=True,  # both providers require it
            port=imap_account.imaps_port,
            password=False,
            **{
                f"{prefix}_refresh_token": "unused while the access token is valid",
                f"{prefix}_access_token": token,
                f"{prefix}_access_token_expiration": FAR_FUTURE,
                **vals,
            },
        )
        return server_id, token

    return make


@pytest.fixture
def admin_channel(odoo_db):
    """Messages posted to the administrators' channel during the test."""
    with odoo_db.env() as env:
        channel = env.ref("mail.channel_admin")
        first_id = env["mail.message"].search([], order="id desc", limit=1).id

    def messages():
        with odoo_db.env() as env:
            return (
                env["mail.message"]
                .search(
                    [
                        ("model", "=", "discuss.channel"),
                        ("res_id", "=", channel.id),
                        ("id", ">", first_id),
                    ],
                    order="id",
                )
                .mapped("body")
            )

    return messages


def last_run(env, server_id):
    return env["fetchmail.server"].browse(server_id).ticket_fetch_run_ids[:1]


@pytest.mark.parametrize("server_type", ["outlook", "gmail"])
def test_oauth_mailbox_fetches_tickets(
    odoo_db, oauth_server, imap_account, oauth_tokens, server_type
):
    with odoo_db.env() as env:
        module = env["ir.module.module"].search([("name", "=", PROVIDERS[server_type])])
        assert module.state == "installed"
    server_id, token = oauth_server(server_type)
    imap_account.append(make_mail("Drucker druckt nicht"))
    imap_account.append(make_mail("Bildschirm flackert"))
    odoo_db.run_cron()

    with odoo_db.env() as env:
        tickets = env["mail.ticket"].search([("fetchmail_server_id", "=", server_id)], order="id")
        assert tickets.mapped("name") == ["Drucker druckt nicht", "Bildschirm flackert"]
        run = last_run(env, server_id)
        assert (run.created_count, run.error) == (2, False)
    assert oauth_tokens.checked[-1] == token  # Dovecot checked the token: an XOAUTH2 login
    assert all(r"\Seen" in flags for flags in imap_account.flags().values())


def test_expired_access_token_is_renewed(
    odoo_db, oauth_server, imap_account, oauth_tokens, odoo_outlook_provider
):
    server_id, old_token = oauth_server(
        "outlook",
        microsoft_outlook_refresh_token=oauth_tokens.issue_refresh(imap_account.login),
    )
    oauth_tokens.revoke(old_token)
    with odoo_db.env() as env:
        env["fetchmail.server"].browse(server_id).microsoft_outlook_access_token_expiration = (
            int(time.time()) - 60
        )
    imap_account.append(make_mail("Drucker druckt nicht"))
    odoo_db.run_cron()

    with odoo_db.env() as env:
        server = env["fetchmail.server"].browse(server_id)
        assert last_run(env, server_id).created_count == 1
        assert server.microsoft_outlook_access_token not in (old_token, False)
        assert server.microsoft_outlook_access_token_expiration > time.time()


@pytest.fixture
def odoo_outlook_provider(odoo_db, oauth_tokens):
    """Odoo's Outlook OAuth talks to the loopback provider (never to the network)."""
    params = {
        "microsoft_outlook.endpoint": oauth_tokens.base_url,
        "microsoft_outlook_client_id": "mail-ticket-tests",
        "microsoft_outlook_client_secret": "mail-ticket-tests",
    }
    with odoo_db.env() as env:
        for key, value in params.items():
            env["ir.config_parameter"].set_param(key, value)
    yield
    with odoo_db.env() as env:
        for key in params:
            env["ir.config_parameter"].set_param(key, False)


def test_refused_token_tells_the_admins(
    odoo_db, oauth_server, imap_account, oauth_tokens, admin_channel
):
    server_id, token = oauth_server("gmail")
    imap_account.append(make_mail("Drucker druckt nicht"))
    oauth_tokens.revoke(token)  # revoked at the provider: Dovecot refuses the login
    odoo_db.run_cron()
    odoo_db.run_cron()

    with odoo_db.env() as env:
        server = env["fetchmail.server"].browse(server_id)
        server_name = server.name
        assert "AUTHENTICATIONFAILED" in last_run(env, server_id).error
        assert server.error_date and "AUTHENTICATIONFAILED" in server.error_message
        assert not env["mail.ticket"].search_count([("fetchmail_server_id", "=", server_id)])
    [alert] = admin_channel()  # told once, not on every run
    assert server_name in alert and "AUTHENTICATIONFAILED" in alert
    assert list(imap_account.flags().values()) == [set()]  # the mail waits in the mailbox

    # the admin signs in again: the next run fetches the mail
    with odoo_db.env() as env:
        env["fetchmail.server"].browse(server_id).google_gmail_access_token = oauth_tokens.issue(
            imap_account.login
        )
    odoo_db.run_cron()
    with odoo_db.env() as env:
        server = env["fetchmail.server"].browse(server_id)
        assert last_run(env, server_id).created_count == 1
        assert not server.error_date


def test_expired_refresh_token_tells_the_admins(
    odoo_db, oauth_server, imap_account, admin_channel, odoo_outlook_provider
):
    server_id, _token = oauth_server(
        "outlook",
        microsoft_outlook_refresh_token="expired after 90 days without use",
    )
    with odoo_db.env() as env:
        env["fetchmail.server"].browse(server_id).microsoft_outlook_access_token_expiration = (
            int(time.time()) - 60
        )
    imap_account.append(make_mail("Drucker druckt nicht"))
    odoo_db.run_cron()

    with odoo_db.env() as env:
        assert "refresh token has expired" in last_run(env, server_id).error
    [alert] = admin_channel()
    assert "refresh token has expired" in alert
