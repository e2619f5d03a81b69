"""schemathesis hooks for the contract run: every request carries a bearer token of one
test user, logged in again whenever a token stops working.

The fuzzer calls every operation, `POST /auth/logout_all` among them, which revokes every
token of the user; schemathesis then drops the cached token on the 401 and asks `get`
again, so the rest of the run stays authenticated. Loaded by the schemathesis CLI through
SCHEMATHESIS_HOOKS; the server and the user come from the environment the test sets.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis

API_ENV = "CONTRACT_API"
LOGIN_ENV = "CONTRACT_LOGIN"
PASSWORD_ENV = "CONTRACT_PASSWORD"


@schemathesis.auth()
class BearerLogin:
    def get(self, case: schemathesis.Case[Any], ctx: schemathesis.AuthContext) -> str:
        response = httpx.post(
            f"{os.environ[API_ENV]}/auth/login",
            json={"login": os.environ[LOGIN_ENV], "password": os.environ[PASSWORD_ENV]},
            timeout=10,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def set(self, case: schemathesis.Case[Any], data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {data}"
