"""Phone numbers the login can text a code to."""

from __future__ import annotations

import re

MAINLAND_MOBILE = re.compile(r"^\+861[3-9]\d{9}$")  # E.164, +86 1xxxxxxxxxx
