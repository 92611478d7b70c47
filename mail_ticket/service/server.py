"""Start the push listener inside ``odoo-bin``, the way OCA ``queue_job`` starts its job
runner: when mail_ticket is a server-wide module (``--load=base,web,mail_ticket`` or
``server_wide_modules`` in odoo.conf), Odoo imports it before it starts its server, and
these hooks start one listener for the whole process:

* threaded server (``workers = 0``): a thread, started and stopped with the server;
* prefork server (``workers > 0``): one dedicated worker process of the master, respawned
  by it when it dies, never one per HTTP or cron worker.

Without mail_ticket among the server-wide modules nothing happens: the addon loaded by a
registry alone starts no listener. ``odoo-bin mail_ticket_idle`` runs it as a service of
its own instead (``cli/mail_ticket_idle.py``).
"""

import logging
import os
import resource
import threading

from odoo.service import server
from odoo.tools import config

from .idle_listener import IdleListener

_logger = logging.getLogger(__name__)


def listener_enabled():
    return (
        "mail_ticket" in (config["server_wide_modules"] or ())
        and not config["stop_after_init"]
        and not os.environ.get("MAIL_TICKET_IDLE_DISABLE")
    )


class WorkerMailTicketIdle(server.Worker):
    """The prefork worker holding the IDLE connections."""

    def __init__(self, multi):
        super().__init__(multi)
        self.watchdog_timeout = None  # its loop sleeps for minutes, by design
        self.listener = None

    def sleep(self):
        pass

    def check_limits(self):
        res = super().check_limits()
        # limit_time_cpu bounds a request; the listener is one endless unit of work
        _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
        return res

    def signal_handler(self, sig, frame):  # pylint: disable=missing-return
        super().signal_handler(sig, frame)
        if self.listener:
            self.listener.stop()

    def process_work(self):
        self.listener = IdleListener(should_stop=lambda: os.getppid() != self.ppid)
        self.listener.run()
        self.alive = False


_thread = None
_listener = None
_stopping = threading.Event()
RESTART_DELAY = 10  # after the listener of the threaded server failed


def run_threaded():
    """The threaded server's listener thread: a listener that fails is replaced (the
    prefork master respawns its worker, systemd the command)."""
    global _listener  # one listener per process
    while not _stopping.is_set():
        _listener = IdleListener()
        try:
            _listener.run()
        except Exception:  # logged by the listener
            _stopping.wait(RESTART_DELAY)
        else:
            return


_orig_threaded_start = server.ThreadedServer.start
_orig_threaded_stop = server.ThreadedServer.stop
_orig_prefork_init = server.PreforkServer.__init__
_orig_prefork_process_spawn = server.PreforkServer.process_spawn
_orig_prefork_worker_pop = server.PreforkServer.worker_pop


def threaded_start(self, *args, **kwargs):
    global _thread  # one listener per process
    res = _orig_threaded_start(self, *args, **kwargs)
    stop = kwargs.get("stop", args[0] if args else False)
    if listener_enabled() and not stop and _thread is None:
        _logger.info("starting the mail_ticket push listener (threaded server)")
        _stopping.clear()
        _thread = threading.Thread(target=run_threaded, name="mail_ticket_idle", daemon=True)
        _thread.start()
    return res


def threaded_stop(self):
    global _thread, _listener
    _stopping.set()
    if _listener:
        _listener.stop()
    res = _orig_threaded_stop(self)
    if _thread:
        _thread.join(10)
    _thread = _listener = None
    return res


def prefork_init(self, app):
    res = _orig_prefork_init(self, app)
    self.workers_mail_ticket_idle = {}
    return res


def prefork_process_spawn(self):
    _orig_prefork_process_spawn(self)
    if (
        hasattr(self, "workers_mail_ticket_idle")
        and not self.workers_mail_ticket_idle
        and listener_enabled()
    ):
        self.worker_spawn(WorkerMailTicketIdle, self.workers_mail_ticket_idle)


def prefork_worker_pop(self, pid):
    _orig_prefork_worker_pop(self, pid)
    if hasattr(self, "workers_mail_ticket_idle"):
        self.workers_mail_ticket_idle.pop(pid, None)


server.ThreadedServer.start = threaded_start
server.ThreadedServer.stop = threaded_stop
server.PreforkServer.__init__ = prefork_init
server.PreforkServer.process_spawn = prefork_process_spawn
server.PreforkServer.worker_pop = prefork_worker_pop
