"""The Twilio SMS backend, seen through a fake `twilio.http.HttpClient`: no network, but the exact
request the `twilio` library would send."""

from __future__ import annotations

import json
import re

import pytest
from test_login import each_request_stands_alone, log_in, send_code, user_row  # noqa: F401
from twilio.http import HttpClient
from twilio.http.response import Response

from actions import login
from app import create_app
from views.sms import SmsError, TwilioBackend, make_backend

SID = "AC" + "0" * 32
TOKEN = "t"
NUMBER = "+15005550006"
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"


class FakeHttpClient(HttpClient):
    """Records each request and answers like Twilio: 201 with a Message resource, or the error given."""

    def __init__(self, status=201, error=None):
        super().__init__(logger=None, is_async=False)
        self.requests = []
        self.status = status
        self.error = error

    def request(
        self, method, uri, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False
    ):
        self.requests.append(
            {"method": method, "uri": uri, "params": params, "data": dict(data or {}), "headers": headers, "auth": auth}
        )
        if self.status >= 400:
            return Response(self.status, json.dumps(self.error or {}))
        data = data or {}
        message = {
            "sid": "SM" + "1" * 32,
            "account_sid": SID,
            "api_version": "2010-04-01",
            "status": "queued",
            "to": data.get("To"),
            "from": data.get("From"),
            "messaging_service_sid": data.get("MessagingServiceSid"),
            "body": data.get("Body"),
            "num_segments": "1",
            "num_media": "0",
            "direction": "outbound-api",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": "Wed, 25 Nov 2026 08:00:00 +0000",
            "date_updated": "Wed, 25 Nov 2026 08:00:00 +0000",
            "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{SID}/Messages/SM{'1' * 32}.json",
            "subresource_uris": {},
        }
        return Response(201, json.dumps(message))


def backend(sender=NUMBER, **fake):
    http = FakeHttpClient(**fake)
    return TwilioBackend(account_sid=SID, auth_token=TOKEN, sender=sender, http_client=http), http


def test_a_code_goes_to_twilio_messages_as_the_twilio_library_sends_it():
    sms, http = backend()
    sms.send("+8613800000005", "clerk1", "123456")
    assert len(http.requests) == 1
    req = http.requests[0]
    assert req["method"] == "POST"
    assert req["uri"] == MESSAGES_URL
    assert req["auth"] == (SID, TOKEN)
    assert req["data"]["To"] == "+8613800000005"
    assert req["data"]["From"] == NUMBER
    assert "MessagingServiceSid" not in req["data"]
    assert "123456" in req["data"]["Body"] and "验证码" in req["data"]["Body"]
    assert req["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_a_messaging_service_sender_sends_messaging_service_sid():
    service = "MG" + "2" * 32
    sms, http = backend(sender=service)
    sms.send("+8613800000005", "clerk1", "654321")
    data = http.requests[0]["data"]
    assert data["MessagingServiceSid"] == service
    assert "From" not in data
    assert "654321" in data["Body"]


def test_a_twilio_error_becomes_sms_error():
    sms, http = backend(
        status=400,
        error={
            "code": 21211,
            "message": "Invalid 'To' Phone Number: +861380000000X",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400,
        },
    )
    with pytest.raises(SmsError) as err:
        sms.send("+8613800000005", "clerk1", "123456")
    assert "21211" in str(err.value) or "Invalid" in str(err.value)
    assert len(http.requests) == 1


@pytest.mark.parametrize("missing", ["account_sid", "auth_token", "sender"])
def test_missing_twilio_credentials_raise_sms_error(monkeypatch, missing):
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"):
        monkeypatch.delenv(name, raising=False)
    given = {"account_sid": SID, "auth_token": TOKEN, "sender": NUMBER, "http_client": FakeHttpClient()}
    given.pop(missing)
    with pytest.raises(SmsError, match="TWILIO_ACCOUNT_SID"):
        TwilioBackend(**given)


def test_sms_backend_twilio_without_environment_refuses_to_start(monkeypatch):
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SmsError):
        make_backend("twilio")


def test_credentials_come_from_the_environment(monkeypatch, app):
    monkeypatch.setenv("SMS_BACKEND", "twilio")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_FROM", NUMBER)
    other = create_app({"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": "x"})
    sms = other.extensions["sms"]  # read once by create_app (config.py), as in production
    http = sms.client.http_client = FakeHttpClient()
    sms.send("+8613800000005", "clerk1", "123456")
    assert http.requests[0]["auth"] == (SID, TOKEN) and http.requests[0]["data"]["From"] == NUMBER


# ---------------------------------------------------------------- through the app
def test_the_login_page_sends_one_twilio_message_whose_code_logs_in(app, client, monkeypatch):
    sms, http = backend()
    monkeypatch.setitem(app.extensions, "sms", sms)
    status, body = send_code(client, "clerk1")
    assert status == 200 and body["ok"] is True
    assert len(http.requests) == 1
    data = http.requests[0]["data"]
    assert data["To"] == "+8613800000005"
    code = re.search(r"(?<!\d)(\d{6})(?!\d)", data["Body"]).group(1)

    resp = log_in(client, "clerk1", code)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/admin/")
    assert len(http.requests) == 1


def test_when_twilio_fails_the_clerk_is_told_and_may_retry_at_once(app, client, monkeypatch):
    sms, http = backend(status=400, error={"code": 30003, "message": "Unreachable destination handset", "status": 400})
    monkeypatch.setitem(app.extensions, "sms", sms)
    assert send_code(client, "clerk1") == (400, {"ok": False, "message": login.MSG_SMS_FAILED})
    row = user_row(app, "clerk1")
    assert row["login_code_hash"] is None and row["login_code_sent_at"] is None  # no undelivered code lingers

    http.status = 201  # Twilio is back: the retry is not told to wait 60 s for a code that never came
    status, body = send_code(client, "clerk1")
    assert status == 200 and body["ok"] is True
    assert len(http.requests) == 2
