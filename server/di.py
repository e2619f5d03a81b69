"""Annotations that mark handler parameters as the named dependencies of server.deps.

Litestar 3 stops inferring dependencies from parameter names; these aliases say it.
"""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency

from domain.pagination import PageRequest
from domain.services.auth import Principal
from server.services import Services

ServicesDep: TypeAlias = NamedDependency[Services]
# A valid access token (401 otherwise).
PrincipalDep: TypeAlias = NamedDependency[Principal]
# A valid access token plus one token of the caller's write budget (429 when spent).
ActorDep: TypeAlias = NamedDependency[Principal]
# An optional token: None when absent, 401 when present but bad.
ViewerDep: TypeAlias = NamedDependency[Principal | None]
PageDep: TypeAlias = NamedDependency[PageRequest]
