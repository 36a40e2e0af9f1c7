"""Keep secrets out of every message: API keys and URL passwords are masked before printing."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

MASK = "****"
_known: set[str] = set()
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@")


def register_secret(value: str | None) -> None:
    """Remember a secret so that `redact` masks it wherever it appears."""
    if value and len(value) >= 3:
        _known.add(value)


def register_url(url: str | None) -> None:
    """Remember the password of a URL such as postgresql://user:pw@host/db."""
    if not url:
        return
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    register_secret(password)


def split_url_password(url: str) -> tuple[str, str | None]:
    """`postgresql://u:pw@h/db` -> (`postgresql://u@h/db`, `pw`), so the password can travel as a secret."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url, None
    if password is None:
        return url, None
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}@{netloc[1]}").geturl(), unquote(password)


def with_url_password(url: str, password: str) -> str:
    """The inverse of `split_url_password`, for stores that only take a URL."""
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    if not user:
        return url
    return parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}").geturl()


def redact(text: str) -> str:
    """Mask known secrets and any password written into a URL."""
    for secret in sorted(_known, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
