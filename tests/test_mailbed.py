"""The mail test bed behaves like real servers (no Odoo involved).

Run alone with: python -m pytest -p no:odoo tests/test_mailbed.py -q
"""

import email.policy
import imaplib
import smtplib
from email.message import EmailMessage

import pytest
from mailbed import MailbedError, imap_utf7_decode, imap_utf7_encode


def make_message(subject: str, body: str = "Hello.\n", **headers) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("from_", "Jane Customer <jane@customer.example.org>")
    msg["To"] = headers.pop("to", "support@example.com")
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@customer.example.org>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def test_append_uids_flags_uidvalidity(imap_account):
    uids = [
        imap_account.append(make_message("one").as_bytes()),
        imap_account.append(make_message("two").as_bytes(), flags="\\Seen"),
        imap_account.append(make_message("three").as_bytes()),
    ]

    assert uids == [1, 2, 3]
    assert imap_account.uids() == uids
    assert imap_account.uids(criteria="UNSEEN") == [1, 3]
    assert imap_account.uids(criteria="SEEN") == [2]
    assert imap_account.flags() == {1: set(), 2: {"\\Seen"}, 3: set()}
    validity = imap_account.uidvalidity()
    assert validity > 0
    assert imap_account.uidvalidity() == validity

    # The helpers only EXAMINE: a real client still sees the messages as \Recent
    # and unseen, and what it reads arrives intact.
    with imap_account.client() as imap:
        typ, data = imap.select("INBOX")
        assert (typ, data) == ("OK", [b"3"])
        typ, data = imap.uid("SEARCH", "RECENT")
        assert data == [b"1 2 3"]
        typ, data = imap.uid("FETCH", "3", "(BODY.PEEK[])")
        fetched = email.message_from_bytes(data[0][1], policy=email.policy.default)
        assert fetched["Subject"] == "three"
        assert fetched.get_content() == "Hello.\r\n"  # IMAP speaks CRLF
        imap.uid("STORE", "1", "+FLAGS", "(\\Seen \\Flagged)")
    assert imap_account.flags() == {1: {"\\Seen", "\\Flagged"}, 2: {"\\Seen"}, 3: set()}


def test_accounts_are_isolated(dovecot, imap_account):
    other = dovecot.new_account()
    imap_account.append(make_message("mine").as_bytes())

    assert other.uids() == []
    assert other.flags() == {}
    assert imap_account.uids() == [1]


def test_folders_created_by_a_client(imap_account):
    assert imap_account.folders() == ["INBOX"]

    with imap_account.client() as imap:
        assert imap.create('"Tickets"')[0] == "OK"
        assert imap.create(f'"{imap_utf7_encode("Erledigt Tickets ü")}"')[0] == "OK"

    assert set(imap_account.folders()) == {"INBOX", "Tickets", "Erledigt Tickets ü"}
    uid = imap_account.append(make_message("filed").as_bytes(), folder="Erledigt Tickets ü")
    assert imap_account.uids("Erledigt Tickets ü") == [uid]
    assert imap_account.uids() == []
    assert b"Subject: filed" in imap_account.fetch(uid, "Erledigt Tickets ü")


def test_append_creates_missing_folder_unless_told_not_to(imap_account):
    with pytest.raises(MailbedError, match="TRYCREATE"):
        imap_account.append(make_message("x").as_bytes(), folder="Archive", create=False)
    assert imap_account.append(make_message("x").as_bytes(), folder="Archive") == 1
    assert "Archive" in imap_account.folders()


def test_login_rules(dovecot, imap_account):
    # Plain LOGIN on the non-TLS port (Odoo fetchmail with is_ssl off) ...
    with imaplib.IMAP4(imap_account.host, imap_account.port) as imap:
        assert imap.login(imap_account.login, imap_account.password)[0] == "OK"
    # ... IMAPS with the self-signed certificate, as Odoo connects (no ssl_context) ...
    if dovecot.imaps_port:
        with imaplib.IMAP4_SSL(imap_account.host, imap_account.imaps_port) as imap:
            assert imap.login(imap_account.login, imap_account.password)[0] == "OK"
    # ... a new password applies at once, on the running server ...
    dovecot.add_user(imap_account.login, "changed")
    dovecot.client(imap_account.login, "changed").logout()
    # ... and more than Dovecot's default 10 sessions per user and IP are allowed.
    sessions = [dovecot.client(imap_account.login, "changed") for _ in range(12)]
    for imap in sessions:
        imap.logout()


def test_modified_utf7_round_trip():
    for name in ("INBOX", "Tickets & Co", "Erledigt ü", "日本語", "a&b/ÄÖÜ~"):
        encoded = imap_utf7_encode(name)
        assert encoded.isascii()
        assert imap_utf7_decode(encoded) == name
    assert imap_utf7_encode("Entwürfe") == "Entw&APw-rfe"


def test_smtp_sink_captures_message(smtp_outbox):
    msg = make_message("Your ticket", "Dear Jane,\nwe are on it.\n", to="jane@customer.example.org")
    msg["Cc"] = "boss@customer.example.org"
    recipients = ["jane@customer.example.org", "boss@customer.example.org"]

    with smtplib.SMTP(smtp_outbox.host, smtp_outbox.port) as smtp:
        # strict like a real MTA: bytes with bare LF line endings would be refused
        smtp.sendmail("bounce+42@example.com", recipients, msg.as_bytes(policy=email.policy.SMTP))

    # stored before the server answered 250: no waiting needed
    [received] = smtp_outbox.messages()
    assert received["Subject"] == "Your ticket"
    assert received["From"] == "Jane Customer <jane@customer.example.org>"
    assert received["To"] == "jane@customer.example.org"
    assert received["Cc"] == "boss@customer.example.org"
    assert received["Message-ID"] == "<Your-ticket@customer.example.org>"
    assert received.get_content() == "Dear Jane,\nwe are on it.\n"
    # the envelope, recorded by the sink
    assert received["X-MailFrom"] == "bounce+42@example.com"
    assert received["X-RcptTo"] == ", ".join(recipients)


def test_smtp_outbox_is_emptied_and_keeps_order(smtp_outbox):
    assert smtp_outbox.messages() == []
    with smtplib.SMTP(smtp_outbox.host, smtp_outbox.port) as smtp:
        for n in range(3):
            smtp.send_message(make_message(f"message {n}"))
    assert [m["Subject"] for m in smtp_outbox.wait_for(3)] == [
        "message 0",
        "message 1",
        "message 2",
    ]
    with pytest.raises(TimeoutError, match="message 2"):
        smtp_outbox.wait_for(4, timeout=0.05)
    smtp_outbox.clear()
    assert smtp_outbox.messages() == []


def test_oauth_logins(dovecot, imap_account, oauth_tokens):
    """XOAUTH2 as Microsoft 365 and Gmail mailboxes log in, next to plain passwords."""

    def xoauth2(token):
        return f"user={imap_account.login}\x01auth=Bearer {token}\x01\x01".encode()

    token = oauth_tokens.issue(imap_account.login)
    with imaplib.IMAP4(imap_account.host, imap_account.port) as imap:
        assert imap.authenticate("XOAUTH2", lambda _challenge: xoauth2(token))[0] == "OK"
        assert imap.select("INBOX")[0] == "OK"
    assert oauth_tokens.checked[-1] == token  # Dovecot asked the endpoint
    # a token for another account does not open this one
    other = oauth_tokens.issue("someone-else@example.com")
    with (
        imaplib.IMAP4(imap_account.host, imap_account.port) as imap,
        pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"),
    ):
        imap.authenticate("XOAUTH2", lambda _challenge: xoauth2(other))
    # a revoked token is refused, the password still works
    oauth_tokens.revoke(token)
    with (
        imaplib.IMAP4(imap_account.host, imap_account.port) as imap,
        pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"),
    ):
        imap.authenticate("XOAUTH2", lambda _challenge: xoauth2(token))
    imap_account.client().logout()
