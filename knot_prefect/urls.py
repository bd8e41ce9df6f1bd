"""Credentials in URLs: refused in configuration, masked in every message.

A password or token has one home in a knot block: a secret field, masked in the
Prefect UI and never logged. A URL is configuration, shown in the UI, in exports, in
Prefect's events and in messages, so a URL field refuses credentials in its user info
(``user:PASSWORD@host``) or its query string (``?password=...``, ``?token=...``), and
text that may hold somebody else's URL (a driver's error) is masked before it is shown.

Examples:
    >>> credential_parts("postgresql://analyst@db/warehouse")
    []
    >>> credential_parts("postgresql://db/warehouse?user=analyst&password=hunter2")
    ["query parameter 'password'"]
    >>> mask_url("https://alice:hunter2@mlflow.example.com/?token=abc&x=1")
    'https://alice:***@mlflow.example.com/?token=***&x=1'
    >>> mask_urls("could not connect to postgresql://bob:hunter2@db:5432/sales")
    'could not connect to postgresql://bob:***@db:5432/sales'
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# Query parameter names (lower case, "-" read as "_") that carry credentials: any name
# containing one of these words, or exactly one of the short forms.
_SECRET_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "credential",
    "signature",
    "private_key",
)
_SECRET_NAMES = ("pwd", "pass", "sig", "auth", "authorization", "access_key")

# A reference such as ``${KNOT_ONLINE_STORE_PASSWORD}``, substituted from a secret field
# at run time, is where a credential should be, so it is not one.
_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_secret_parameter(name: str) -> bool:
    """Whether a query parameter (or setting) name carries a credential.

    Examples:
        >>> [is_secret_parameter(n) for n in ("password", "sslpassword", "X-Amz-Signature")]
        [True, True, True]
        >>> [is_secret_parameter(n) for n in ("user", "sslmode", "application_name")]
        [False, False, False]
    """
    key = name.strip().lower().replace("-", "_")
    return key in _SECRET_NAMES or any(word in key for word in _SECRET_WORDS)


def _split(url: str) -> tuple[str, str, str, str, str] | None:
    """``(scheme://, userinfo, host-and-path, query, fragment)``; None when not a URL."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return None
    rest = url[scheme.end():]
    rest, hash_mark, fragment = rest.partition("#")
    rest, question_mark, query = rest.partition("?")
    # The user info ends at the last "@" before the path (a password may hold "@").
    slash = rest.find("/", rest.rfind("@") + 1) if "@" in rest else rest.find("/")
    authority = rest if slash == -1 else rest[:slash]
    userinfo, at, host = authority.rpartition("@")
    return (
        scheme.group(0),
        userinfo + at,
        host + rest[len(authority):],
        question_mark + query,
        hash_mark + fragment,
    )


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in re.split(r"[&;]", query.removeprefix("?")):
        name, _, value = part.partition("=")
        pairs.append((name, value))
    return pairs


def credential_parts(url: str) -> list[str]:
    """Describe the credentials a URL holds, without their values.

    Args:
        url: Any URL or DSN.

    Returns:
        One phrase per credential found (``"a password in the user info"``,
        ``"query parameter 'token'"``); empty when the URL holds none.
    """
    parts = _split(url.strip())
    if parts is None:
        return []
    _, userinfo, _, query, _ = parts
    found = []
    password = userinfo.removesuffix("@").partition(":")[2]
    if ":" in userinfo and not _REFERENCE.match(password):
        found.append("a password in the user info (user:PASSWORD@host)")
    for name, value in _query_pairs(query):
        if value and is_secret_parameter(name) and not _REFERENCE.match(value):
            found.append(f"query parameter {name!r}")
    return found


def check_no_credentials(url: str, field: str, secret_field: str) -> str:
    """Refuse a URL that holds credentials, naming the field and where they belong.

    Args:
        url: The value of a URL field.
        field: The field's name, e.g. ``"url"``.
        secret_field: The secret field(s) to use instead, e.g. ``"password"``.

    Returns:
        ``url`` unchanged when it holds no credentials.

    Raises:
        ValueError: Naming what was found, never the value.

    Examples:
        >>> check_no_credentials("http://mlflow:5000", "tracking_uri", "token")
        'http://mlflow:5000'
        >>> check_no_credentials("http://a:b@mlflow:5000", "tracking_uri", "password")
        Traceback (most recent call last):
        ...
        ValueError: tracking_uri holds a password in the user info (user:PASSWORD@host): \
remove it from the URL and put it in the password field (a secret, masked in the UI and \
never logged).
    """
    found = credential_parts(url)
    if found:
        raise ValueError(
            f"{field} holds {' and '.join(found)}: remove it from the URL and put it in "
            f"the {secret_field} field (a secret, masked in the UI and never logged)."
        )
    return url


def credentials_in_settings(settings: Any, path: str = "") -> list[str]:
    """Find credentials written as plain values in nested settings (parsed YAML).

    A key that names a credential (``password``, ``token``, ...) must hold a
    ``${NAME}`` reference; a string that is a URL or a ``key=value,...`` connection
    string must hold no credentials.

    Args:
        settings: Parsed YAML or JSON (mappings, lists, scalars).
        path: Where ``settings`` sits, for the phrases.

    Returns:
        One phrase per credential found, naming its place, never its value.

    Examples:
        >>> credentials_in_settings({"online_store": {"password": "${PW}"}})
        []
        >>> credentials_in_settings({"online_store": {"connection_string": "r:6379,password=x"}})
        ["a password in 'online_store.connection_string'"]
    """
    found: list[str] = []
    if isinstance(settings, dict):
        for key, value in settings.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(value, str) and is_secret_parameter(str(key)):
                if value.strip() and not _REFERENCE.match(value.strip()):
                    found.append(f"a plain value in {where!r}")
            else:
                found += credentials_in_settings(value, where)
    elif isinstance(settings, list):
        for index, value in enumerate(settings):
            found += credentials_in_settings(value, f"{path}[{index}]")
    elif isinstance(settings, str):
        pairs = [part.partition("=") for part in re.split(r"[,;\s]+", settings) if "=" in part]
        in_pairs = any(
            is_secret_parameter(name) and value and not _REFERENCE.match(value)
            for name, _, value in pairs
        )
        if credential_parts(settings) or (_split(settings) is None and in_pairs):
            found.append(f"a password in {path!r}")
    return found


def mask_url(url: str) -> str:
    """The URL with its user info password and credential query values replaced by ``***``.

    Examples:
        >>> mask_url("postgresql://db/sales?user=bob&password=x&sslmode=require")
        'postgresql://db/sales?user=bob&password=***&sslmode=require'
        >>> mask_url("sqlite:////tmp/mlflow.db")
        'sqlite:////tmp/mlflow.db'
    """
    parts = _split(url)
    if parts is None:
        return url
    scheme, userinfo, rest, query, fragment = parts
    if ":" in userinfo:
        userinfo = f"{userinfo.partition(':')[0]}:{MASK}@"
    if query:
        masked = [
            f"{name}={MASK}" if value and is_secret_parameter(name) else
            (f"{name}={value}" if value or "=" in part else name)
            for part in re.split(r"[&;]", query[1:])
            for name, value in [part.partition("=")[::2]]
        ]
        query = "?" + "&".join(masked)
    return f"{scheme}{userinfo}{rest}{query}{fragment}"


def mask_urls(text: str) -> str:
    """Mask the credentials of every URL that occurs in free text (an error message).

    Examples:
        >>> mask_urls("no credentials in http://host:5000/api")
        'no credentials in http://host:5000/api'
    """
    return _URL_IN_TEXT.sub(lambda match: mask_url(match.group(0)), text)


def _any_case(word: str) -> str:
    # Letters in both cases, "_" and "-" as they are: JavaScript reads the pattern too.
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


def _no_credentials_pattern() -> str:
    words = "|".join(_any_case(w) for w in (*_SECRET_WORDS, "api-key", "private-key"))
    names = "|".join(_any_case(n) for n in (*_SECRET_NAMES, "access-key"))
    return (
        # No "user:password@" before the path...
        r"^(?![A-Za-z][A-Za-z0-9+.-]*://[^/?#]*:[^/?#]*@)"
        # ...and no credential-named query parameter with a value.
        rf"(?![^?#]*\?(?:[^#]*[&;])?(?:[^=&;#]*(?:{words})[^=&;#]*|{names})=[^&;#])"
    )


NO_CREDENTIALS_PATTERN = _no_credentials_pattern()
"""A JSON schema ``pattern`` that a URL without credentials matches.

Put on a block field's schema (``json_schema_extra={"pattern": ...}``) so the Prefect UI
refuses a URL with credentials before saving it; the field's validator refuses the same
URLs in Python with a clearer message.
"""
