"""Console sessions: who is signed in, and the CSRF token every form post must carry.

The session lives in a signed cookie (Starlette's SessionMiddleware, itsdangerous); the signing key is kept
in the data directory with mode 0600, so sessions survive a restart and die with the data directory.
Every console page handler (also the connection handshake pages) starts with:

    if not signed_in(request):
        return sign_in_redirect(request)

and every POST handler calls `check_csrf(request, form.get("csrf_token"))` before acting.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

SIGN_IN_PATH = "/console/signin"
COOKIE_NAME = "runyard_console"
KEY_FILE = "console-session.key"

_USER = "user"
_CSRF = "csrf"


def signed_in(request: Request) -> bool:
    return bool(request.session.get(_USER))


def sign_in_redirect(request: Request) -> Response:
    """303 to the sign-in page, which comes back to this page afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{SIGN_IN_PATH}?{urlencode({'next': target})}", status_code=303)


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use): hidden field `csrf_token` in every form."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[_CSRF] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get(_CSRF)
    if not isinstance(expected, str) or not expected or not submitted:
        raise HTTPException(403, "The form has expired or did not come from this console; reload the page.")
    if not secrets.compare_digest(expected.encode(), submitted.encode()):
        raise HTTPException(403, "The form has expired or did not come from this console; reload the page.")


def start_session(request: Request, user: str) -> None:
    """After a successful sign-in: a fresh session (and CSRF token) so nothing from before carries over."""
    request.session.clear()
    request.session[_USER] = user
    csrf_token(request)


def end_session(request: Request) -> None:
    request.session.clear()


def load_or_create_key(data_dir: Path) -> str:
    """The cookie signing key, created with mode 0600 on first use (never readable by others, not even briefly)."""
    path = data_dir / KEY_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
