from . import (
    test_assignment,
    test_conversation,
    test_fetchmail,
    test_mail_gateway,
    test_mail_ticket,
    test_numbering,
    test_performance,
    test_portal,
    test_response_times,
    test_security,
    test_sender_trust,
    test_ui,
)
