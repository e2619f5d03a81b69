"""The web app: a small browser client of Plaza's own public API, served at `/`.

Its files (plain ES modules, no build step) live in `static/` and ship as package data.
"""

from server.web.static_files import WebAppController

__all__ = ["WebAppController"]
