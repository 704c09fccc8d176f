"""A real SMTP server for tests (aiosmtpd on a free local port) and the mail it received.

    from tests.mailbox import mailbox  # noqa: F401   (a fixture)

`mailbox` points Django's SMTP backend at the server. By default it also runs the send task in the
calling thread as soon as a message is queued, so a test client request has sent its mail when it returns
(the suite's tests run inside one transaction, whose on_commit never fires); `mailbox.worker_mode()` leaves
both to the real path (commit, broker, worker) for browser tests with a real Celery worker.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

URL = re.compile(r"https?://[^\s\"'<>]+")


class _Handler:
    def __init__(self, box: Mailbox):
        self.box = box

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.box.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.box.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: set[str] = set()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    def wait_for(
        self, address: str, *, subject: str = "", count: int = 1, timeout: float = 20
    ) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.to(address) if subject.lower() in str(m["Subject"]).lower()]
            if len(found) >= count:
                return found[-1]
            time.sleep(0.1)
        raise AssertionError(f"no email {subject!r} for {address} after {timeout}s; got {self.summary()}")

    def summary(self) -> list[tuple[str, str]]:
        return [(str(m["To"]), str(m["Subject"])) for m in self.messages]

    @staticmethod
    def text(message: EmailMessage) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()

    @staticmethod
    def html(message: EmailMessage) -> str:
        return message.get_body(preferencelist=("html",)).get_content()

    def link(self, message: EmailMessage, contains: str = "") -> str:
        links = [url for url in URL.findall(self.text(message)) if contains in url]
        assert links, f"no link with {contains!r} in {self.text(message)!r}"
        return links[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    box = Mailbox()
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=_free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture
def mailbox(smtp_server, settings, monkeypatch):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    from merchants import emails

    def send_now(func):
        func()

    def deliver_here(*, email_id: int) -> None:
        emails.email_deliver_now(email_id=email_id)

    monkeypatch.setattr(emails, "_after_commit", send_now)
    monkeypatch.setattr(emails, "email_enqueue", deliver_here)

    def worker_mode() -> None:
        monkeypatch.undo()

    smtp_server.worker_mode = worker_mode
    return smtp_server
