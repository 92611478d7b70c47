from . import (
    test_conversation,
    test_faults,
    test_fetchmail,
    test_first_run,
    test_inbound_security,
    test_mail_gateway,
    test_mail_ticket,
    test_performance,
    test_portal,
    test_security,
    test_sender_trust,
    test_ui,
)
