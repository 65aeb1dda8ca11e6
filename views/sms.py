"""SMS backends for the login code: console (development), memory (tests), twilio (production)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


class SmsError(Exception):
    """The backend could not deliver the message."""


@dataclass
class ConsoleBackend:
    """Prints each code on its own line, for `make run`."""

    stream: object = None

    def send(self, phone: str, username: str, code: str) -> None:
        print(f"SMS to {phone} for {username}: {code}", file=self.stream or sys.stdout, flush=True)


@dataclass
class MemoryBackend:
    """Keeps what it was asked to send; tests read `outbox`."""

    outbox: list = field(default_factory=list)

    def send(self, phone: str, username: str, code: str) -> None:
        self.outbox.append({"phone": phone, "username": username, "code": code})

    def last_code(self, username: str) -> str | None:
        for msg in reversed(self.outbox):
            if msg["username"] == username:
                return msg["code"]
        return None


class TwilioBackend:
    """Sends the app-generated code through Twilio's Messages API with the `twilio` library.

    Credentials come from the settings TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM (a number
    or a messaging service SID starting with MG), which create_app reads from the environment
    (config.py).  `http_client` lets tests see the request it sends.
    """

    def __init__(self, account_sid="", auth_token="", sender="", http_client=None):
        from twilio.rest import Client

        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sender = sender
        if not (self.account_sid and self.auth_token and self.sender):
            raise SmsError("TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN 和 TWILIO_FROM 必须设置")
        self.client = Client(self.account_sid, self.auth_token, http_client=http_client)

    def send(self, phone: str, username: str, code: str) -> None:
        from twilio.base.exceptions import TwilioException

        body = f"【互助保障业务系统】您的登录验证码为{code}，5分钟内有效。如非本人操作，请忽略。"
        kwargs = {"to": phone, "body": body}
        if self.sender.startswith("MG"):
            kwargs["messaging_service_sid"] = self.sender
        else:
            kwargs["from_"] = self.sender
        try:
            self.client.messages.create(**kwargs)
        except TwilioException as exc:
            raise SmsError(str(exc)) from exc


def make_backend(name: str, account_sid: str = "", auth_token: str = "", sender: str = ""):
    if name == "console":
        return ConsoleBackend()
    if name == "memory":
        return MemoryBackend()
    if name == "twilio":
        return TwilioBackend(account_sid, auth_token, sender)
    raise ValueError(f"unknown SMS_BACKEND {name!r} (console, memory, twilio)")
