from . import test_mail_gateway, test_mail_ticket, test_performance, test_security
