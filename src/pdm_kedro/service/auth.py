"""API keys with scopes: kept as sha256 digests, compared in constant time.

Keys come from Kedro credentials (``conf/local/credentials.yml``, never committed)::

    pdm_service_api_keys:
      - {key: "<a long random string>", scopes: [predict]}
      - {key: "<another one>", scopes: [admin]}

and from the environment variable ``PDM_API_KEYS``: ``key:scope`` pairs, comma separated
(``k1:predict,k2:admin``; a key listed twice gets both scopes). The ``admin`` scope includes
``predict``. Clients send the key in the ``X-API-Key`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ENV_KEYS = "PDM_API_KEYS"
HEADER = "X-API-Key"
SCOPES = ("predict", "admin")
IMPLIED = {"admin": {"admin", "predict"}, "predict": {"predict"}}


class KeyConfigError(ValueError):
    """API keys configured in a form the service cannot read."""


def digest(key: str) -> bytes:
    """sha256 of a key: the only form the service keeps."""
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a short, non-reversible key id and its scopes."""

    key_id: str
    scopes: frozenset[str]


def _check_scope(scope: str, where: str) -> str:
    scope = scope.strip()
    if scope not in SCOPES:
        raise KeyConfigError(f"{where}: unknown scope {scope!r}; scopes are {list(SCOPES)}.")
    return scope


def parse_env_keys(text: str) -> list[tuple[str, str]]:
    """``k1:predict,k2:admin`` -> ``[(k1, predict), (k2, admin)]``."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, scope = item.rpartition(":")
        if not sep or not key:
            raise KeyConfigError(
                f"{ENV_KEYS}: entry {item[:4]}... is not 'key:scope' (scopes: {list(SCOPES)})."
            )
        pairs.append((key, _check_scope(scope, ENV_KEYS)))
    return pairs


def parse_credential_keys(entry: Any) -> list[tuple[str, str]]:
    """The credentials entry: a list of ``{key, scopes}`` mappings (or a ``key:scope`` string)."""
    if entry is None:
        return []
    if isinstance(entry, str):
        return parse_env_keys(entry)
    if not isinstance(entry, Iterable) or isinstance(entry, Mapping):
        raise KeyConfigError(
            "credentials pdm_service_api_keys must be a list of {key: ..., scopes: [...]} entries."
        )
    pairs = []
    for i, item in enumerate(entry):
        if not isinstance(item, Mapping) or "key" not in item:
            raise KeyConfigError(f"credentials pdm_service_api_keys[{i}] has no 'key'.")
        scopes = item.get("scopes", ["predict"])
        scopes = [scopes] if isinstance(scopes, str) else list(scopes)
        for scope in scopes:
            pairs.append((str(item["key"]), _check_scope(str(scope), f"pdm_service_api_keys[{i}]")))
    return pairs


class KeyStore:
    """Hashed keys and their scopes; :meth:`authenticate` never keeps or logs a raw key."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        scopes: dict[bytes, set[str]] = {}
        for key, scope in pairs:
            if len(key) < 8:
                raise KeyConfigError("API keys must have at least 8 characters.")
            scopes.setdefault(digest(key), set()).update(IMPLIED[scope])
        self._entries = [(d, frozenset(s)) for d, s in scopes.items()]

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, key: str) -> Principal | None:
        """The key's principal, or ``None``; every stored digest is compared (constant time)."""
        presented = digest(key)
        found: Principal | None = None
        for stored, scopes in self._entries:
            if hmac.compare_digest(stored, presented):
                found = Principal(key_id=stored.hex()[:12], scopes=scopes)
        return found


def load_keys(credential_entry: Any, environ: Mapping[str, str] | None = None) -> KeyStore:
    """Keys from credentials plus ``PDM_API_KEYS``."""
    environ = os.environ if environ is None else environ
    pairs = parse_credential_keys(credential_entry) + parse_env_keys(environ.get(ENV_KEYS, ""))
    return KeyStore(pairs)
