"""Every route of the app, enumerated from app.routes, so a new route cannot be missed."""

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import APIRoute

from service.app import PUBLIC_PREFIXES


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    route: APIRoute

    @property
    def is_public(self) -> bool:
        """Served without a tenant: `/` (to the docs), health, docs and admin (own token)."""
        return self.path == "/" or self.path.startswith(PUBLIC_PREFIXES)

    def sample_path(self) -> str:
        """The path with every parameter filled in with a valid id."""
        return self.route.path_format.format(**{name: 1 for name in self.route.param_convertors})


def operations(app: FastAPI) -> list[Operation]:
    """(method, path) of every API route, included routers and all."""
    try:  # FastAPI >= 0.16x keeps included routers as lazy branches of app.routes
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        routes = [r for r in app.routes if isinstance(r, APIRoute)]
    else:
        routes = [
            c.original_route
            for c in iter_route_contexts(app.routes)
            if isinstance(c.original_route, APIRoute)
        ]
    return sorted(
        (Operation(method, route.path, route) for route in routes for method in route.methods),
        key=lambda op: (op.path, op.method),
    )
