"""MikroTik RouterOS 7 behind the router port, over the RouterOS API."""

from bgpconform.routers.routeros.adapter import Advertisement, RouterOsRouter
from bgpconform.routers.routeros.client import Endpoint, RouterApiError, RouterLoginError, RouterOsApi
from bgpconform.routers.routeros.dialect import Dialect, RouterOsVersion

__all__ = [
    "Advertisement",
    "Dialect",
    "Endpoint",
    "RouterApiError",
    "RouterLoginError",
    "RouterOsApi",
    "RouterOsRouter",
    "RouterOsVersion",
]
