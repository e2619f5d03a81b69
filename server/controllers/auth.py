"""POST /auth/*: register, login, refresh, logout, logout_all, password."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.params import JSONBody

from domain.errors import ValidationFailed
from domain.views import MeView, TokenPair
from server.dependencies import PrincipalDep, ServicesDep, client_ip
from server.openapi import BEARER, BODY, PUBLIC, Email, NewPassword, Username, errors


class RegisterIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    username: Username
    email: Email
    password: NewPassword


class LoginIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One of `login`, `email` or `username` names the account (an email has an @)."""

    password: str
    login: str | None = None
    email: str | None = None
    username: str | None = None

    def identifier(self) -> str:
        for value in (self.login, self.email, self.username):
            if value:
                return value
        raise ValidationFailed("give login, email or username", details={"field": "login"})


class RefreshIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    refresh_token: str


class PasswordIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    old_password: str
    new_password: NewPassword


class AuthController(Controller):
    path = "/auth"
    tags = ("auth",)

    @post("/register", status_code=201, security=PUBLIC, responses=errors(*BODY, 409, 429))
    async def register(
        self, request: Request[Any, Any, Any], data: JSONBody[RegisterIn], services: ServicesDep
    ) -> MeView:
        await services.limits.register_ip.hit(client_ip(request, services))
        account = await services.accounts.register(data.username, data.email, data.password)
        return MeView.of_me(account)

    @post("/login", status_code=200, security=PUBLIC, responses=errors(*BODY, 401, 429))
    async def login(
        self, request: Request[Any, Any, Any], data: JSONBody[LoginIn], services: ServicesDep
    ) -> TokenPair:
        login = data.identifier()
        await services.limits.login_ip.hit(client_ip(request, services))
        # Case-folded as the lookup is: "Rita" and "rita" are one account's budget.
        await services.limits.login_account.hit(login.strip().casefold()[:320])
        return await services.auth.login(login, data.password)

    @post("/refresh", status_code=200, security=PUBLIC, responses=errors(*BODY, 401, 429))
    async def refresh(
        self, request: Request[Any, Any, Any], data: JSONBody[RefreshIn], services: ServicesDep
    ) -> TokenPair:
        # Per login, not per IP: a busy NAT must not stop its users refreshing.
        return await services.auth.refresh(
            data.refresh_token, admit=services.limits.refresh_session.hit
        )

    @post("/logout", status_code=204, security=PUBLIC, responses=errors(*BODY, 401))
    async def logout(self, data: JSONBody[RefreshIn], services: ServicesDep) -> None:
        await services.auth.logout(data.refresh_token)

    @post("/logout_all", status_code=204, security=BEARER, responses=errors(401))
    async def logout_all(self, principal: PrincipalDep, services: ServicesDep) -> None:
        await services.auth.logout_everywhere(principal.user_id)

    @post("/password", status_code=204, security=BEARER, responses=errors(*BODY, 401, 429))
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[PasswordIn],
        principal: PrincipalDep,
        services: ServicesDep,
    ) -> None:
        # Per IP like login: a stolen access token must not buy unlimited password guesses.
        await services.limits.login_ip.hit(client_ip(request, services))
        await services.limits.login_account.hit(f"user:{principal.user_id}")
        await services.auth.change_password(principal.user_id, data.old_password, data.new_password)
