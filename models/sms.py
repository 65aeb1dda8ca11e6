"""The daily SMS budget of the login, counted from the send log (SmsSend): shared by the login
(views/auth.py) and 首页's warning to the admin (views/home.py), so neither view imports the other."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from .base import db, utcnow
from .org import SmsSend

BEIJING_OFFSET = timedelta(hours=8)  # the SMS budget's "today" is the day in Asia/Shanghai (no DST)


def sms_sent_today(now=None) -> int:
    now = now or utcnow()
    start = (now + BEIJING_OFFSET).replace(hour=0, minute=0, second=0, microsecond=0) - BEIJING_OFFSET
    return db.session.scalar(sa.select(sa.func.count()).select_from(SmsSend).where(SmsSend.sent_at >= start))


def sms_budget_exhausted(now=None) -> bool:
    return sms_sent_today(now) >= current_app.config["SMS_DAILY_BUDGET"]
