"""Signing people in through an OpenID Connect provider (Okta, Entra ID, Google, Keycloak, Dex).

The authorization code flow with PKCE (S256), by Authlib's OAuth 2 client; ID tokens are checked
with joserfc (signature) and Authlib's `CodeIDToken` (iss, aud, azp, exp, iat, nonce, at_hash).

- The provider's metadata comes from `{issuer}/.well-known/openid-configuration`, whose `issuer`
  must be the configured one exactly; it is read again after OIDC_DISCOVERY_SECONDS.
- Its keys come from the metadata's `jwks_uri`. A token naming a key id we do not hold refetches
  them (the provider rotated its keys), at most once every OIDC_JWKS_REFETCH_SECONDS.
- A token's `alg` must be one the metadata advertises and asymmetric: never `none`, never an
  HMAC (HS256 keyed with a public key would let anyone forge one).
- Every request to the provider has a timeout and its answer is read up to OIDC_RESPONSE_BYTES;
  its endpoints must be https (plain http only on loopback, for tests and local providers).

What goes wrong is an `OidcProblem` whose text the sign-in page shows as it is: it names the
problem and never echoes what the provider or the browser sent beyond its name.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
from authlib.common.security import is_secure_transport
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from followthrough.domain.limits import (
    OIDC_DISCOVERY_RETRY_SECONDS,
    OIDC_DISCOVERY_SECONDS,
    OIDC_ID_TOKEN_CHARS,
    OIDC_JWKS_REFETCH_SECONDS,
    OIDC_KEYS,
    OIDC_LEEWAY_SECONDS,
    OIDC_RESPONSE_BYTES,
)
from followthrough.logging import get_logger

log = get_logger(__name__)

# Signatures by a key pair only: the provider signs with its private key, we check with the
# public one from its JWKS.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class OidcProblem(Exception):
    """A sign-in through the provider that cannot go on; the text names the problem."""


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    algorithms: frozenset[str]  # advertised and asymmetric
    token_auth_method: str  # client_secret_basic, or client_secret_post where only it is offered


@dataclass(frozen=True)
class SignInRequest:
    """What one sign-in sends the browser to the provider with; kept until it comes back."""

    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class SignedIn:
    """Who the provider says signed in: the ID token's checked claims, and the token itself."""

    claims: dict[str, Any]
    id_token: str


def new_request() -> SignInRequest:
    # The verifier: 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 4.1); 64 here.
    return SignInRequest(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(48),
    )


class _TooLarge(Exception):
    pass


class _CappedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, limit: int) -> None:
        self.inner, self.limit = inner, limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.inner:
            seen += len(chunk)
            if seen > self.limit:
                raise _TooLarge
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


class _BoundedTransport(httpx2.AsyncBaseTransport):
    """Answers over `limit` bytes are refused: on Content-Length, else while they stream."""

    def __init__(self, limit: int) -> None:
        self.inner = httpx2.AsyncHTTPTransport(retries=0)
        self.limit = limit

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            await response.aclose()
            raise _TooLarge
        stream = response.stream
        assert isinstance(stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_CappedStream(stream, self.limit),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class OidcProvider:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str = "openid email profile"
    timeout: float = 10.0
    _metadata: ProviderMetadata | None = field(default=None, init=False)
    _metadata_at: float = field(default=0.0, init=False)
    _failed: tuple[float, str] | None = field(default=None, init=False)  # when, and why
    _keys: KeySet | None = field(default=None, init=False)
    _keys_at: float = field(default=0.0, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def _client(self, metadata: ProviderMetadata | None = None) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self.client_secret,
            scope=self.scopes,
            code_challenge_method="S256",
            token_endpoint_auth_method=(
                metadata.token_auth_method if metadata else "client_secret_basic"
            ),
            timeout=self.timeout,
            follow_redirects=False,
            transport=_BoundedTransport(OIDC_RESPONSE_BYTES),
        )

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        async with self._client() as client:
            try:
                response = await client.request("GET", url, withhold_token=True)
            except _TooLarge:
                raise OidcProblem(f"the provider's {what} is larger than we read") from None
            except httpx2.HTTPError as err:
                log.warning("oidc request failed", what=what, error=type(err).__name__)
                raise OidcProblem(f"the provider's {what} could not be reached") from None
        if response.status_code != 200:
            raise OidcProblem(f"the provider's {what} answered {response.status_code}")
        try:
            found = response.json()
        except ValueError:
            raise OidcProblem(f"the provider's {what} is not JSON") from None
        if not isinstance(found, dict):
            raise OidcProblem(f"the provider's {what} is not a JSON object")
        return found

    # --- the provider's metadata and keys --------------------------------------------------

    async def metadata(self) -> ProviderMetadata:
        """The provider's metadata, read again after OIDC_DISCOVERY_SECONDS; a failed read is
        not tried again for OIDC_DISCOVERY_RETRY_SECONDS (the same problem is raised), so
        visitors of the sign-in page cannot make us hammer a provider that is down."""
        async with self._lock:
            now = time.monotonic()
            if self._failed is not None and now - self._failed[0] < OIDC_DISCOVERY_RETRY_SECONDS:
                raise OidcProblem(self._failed[1])
            if self._metadata is None or now - self._metadata_at >= OIDC_DISCOVERY_SECONDS:
                try:
                    self._metadata = await self._discover()
                except OidcProblem as problem:
                    self._failed = (time.monotonic(), str(problem))
                    raise
                self._failed = None
                self._metadata_at = time.monotonic()
            return self._metadata

    async def _discover(self) -> ProviderMetadata:
        issuer = self.issuer.rstrip("/")
        if not is_secure_transport(issuer):
            raise OidcProblem("the provider's issuer URL must be https (http only on loopback)")
        found = await self._get_json(f"{issuer}/.well-known/openid-configuration", "metadata")
        if found.get("issuer") != self.issuer:
            # OpenID Connect Discovery 4.3: the issuer in the metadata is exactly the one asked.
            raise OidcProblem("the provider's metadata names another issuer than the one set")
        urls: dict[str, str | None] = {}
        for name in (
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "end_session_endpoint",
        ):
            value = found.get(name)
            if value is None and name == "end_session_endpoint":
                urls[name] = None
                continue
            if not isinstance(value, str) or not is_secure_transport(value):
                raise OidcProblem(f"the provider's metadata has no usable {name}")
            urls[name] = value
        advertised = found.get("id_token_signing_alg_values_supported", ["RS256"])
        algorithms = frozenset(a for a in advertised if a in ASYMMETRIC_ALGORITHMS)
        if not isinstance(advertised, list) or not algorithms:
            raise OidcProblem("the provider signs ID tokens with no algorithm we accept")
        methods = found.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        post_only = isinstance(methods, list) and "client_secret_basic" not in methods
        post_only = post_only and "client_secret_post" in methods
        return ProviderMetadata(
            issuer=self.issuer,
            authorization_endpoint=str(urls["authorization_endpoint"]),
            token_endpoint=str(urls["token_endpoint"]),
            jwks_uri=str(urls["jwks_uri"]),
            end_session_endpoint=urls["end_session_endpoint"],
            algorithms=algorithms,
            token_auth_method="client_secret_post" if post_only else "client_secret_basic",
        )

    async def _key_set(self, kid: str | None, metadata: ProviderMetadata) -> KeySet:
        """The provider's keys; fetched again for a key id we do not hold, within the bound."""
        async with self._lock:
            held = self._keys is not None and (kid is None or _has_kid(self._keys, kid))
            may_refetch = time.monotonic() - self._keys_at >= OIDC_JWKS_REFETCH_SECONDS
            if self._keys is None or (not held and may_refetch):
                found = await self._get_json(metadata.jwks_uri, "key set")
                keys = found.get("keys")
                if not isinstance(keys, list) or len(keys) > OIDC_KEYS:
                    raise OidcProblem(f"the provider's key set is not a list of {OIDC_KEYS} keys")
                usable = [
                    k for k in keys if isinstance(k, dict) and k.get("kty") in ("RSA", "EC", "OKP")
                ]
                try:
                    self._keys = KeySet.import_key_set({"keys": usable})
                except (JoseError, ValueError, TypeError):
                    raise OidcProblem("the provider's key set holds a key we cannot read") from None
                self._keys_at = time.monotonic()
                log.info("oidc keys fetched", keys=len(self._keys.keys))
            return self._keys

    # --- the flow --------------------------------------------------------------------------

    async def authorization_url(self, request: SignInRequest, redirect_uri: str) -> str:
        metadata = await self.metadata()
        async with self._client(metadata) as client:
            url, _ = client.create_authorization_url(
                metadata.authorization_endpoint,
                state=request.state,
                code_verifier=request.code_verifier,
                nonce=request.nonce,
                redirect_uri=redirect_uri,
            )
        return str(url)

    async def sign_in(self, code: str, request: SignInRequest, redirect_uri: str) -> SignedIn:
        """The code exchanged (with the PKCE verifier) for tokens; the ID token checked."""
        metadata = await self.metadata()
        async with self._client(metadata) as client:
            try:
                token = await client.fetch_token(
                    metadata.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    redirect_uri=redirect_uri,
                    code_verifier=request.code_verifier,
                )
            except _TooLarge:
                raise OidcProblem("the provider's token response is larger than we read") from None
            except httpx2.HTTPError as err:
                log.warning("oidc token request failed", error=type(err).__name__)
                raise OidcProblem("the provider's token endpoint could not be reached") from None
            except Exception as err:  # Authlib's OAuthError, or an answer that is not JSON
                error = str(getattr(err, "error", "") or type(err).__name__)[:60]
                log.warning("oidc token refused", error=error)
                raise OidcProblem(f"the provider refused the sign-in code ({error})") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise OidcProblem("the provider's token response has no ID token")
        access_token = token.get("access_token")
        claims = await self.check_id_token(
            id_token, request.nonce, access_token if isinstance(access_token, str) else None
        )
        return SignedIn(claims=claims, id_token=id_token)

    async def check_id_token(
        self, id_token: str, nonce: str, access_token: str | None = None
    ) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, times and nonce hold."""
        metadata = await self.metadata()
        if len(id_token) > OIDC_ID_TOKEN_CHARS:
            raise OidcProblem(f"the ID token is over {OIDC_ID_TOKEN_CHARS} characters")
        try:
            header = extract_compact(id_token.encode()).headers()
        except (JoseError, ValueError, TypeError):
            raise OidcProblem("the ID token is not a signed JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in metadata.algorithms:
            raise OidcProblem("the ID token is signed with an algorithm the provider does not use")
        if kid is not None and not isinstance(kid, str):
            raise OidcProblem("the ID token's key id is not a string")
        keys = await self._key_set(kid, metadata)
        key = _key_for(keys, kid, str(alg))
        try:
            decoded = jwt.decode(id_token, key, algorithms=[str(alg)])
        except (JoseError, ValueError, TypeError):
            raise OidcProblem("the ID token's signature is not the provider's") from None
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            options={
                "iss": {"essential": True, "value": self.issuer},
                "aud": {"essential": True, "value": self.client_id},
                "exp": {"essential": True},
            },
            params={"nonce": nonce, "client_id": self.client_id, "access_token": access_token},
        )
        try:
            claims.validate(now=int(time.time()), leeway=OIDC_LEEWAY_SECONDS)
        except JoseError as err:
            name = getattr(err, "claim", None) or getattr(err, "error", "claims")
            raise OidcProblem(f"the ID token's '{name}' claim does not hold") from None
        if claims.get("nonce") != nonce:  # CodeIDToken checks it when present; we require it
            raise OidcProblem("the ID token's 'nonce' claim does not hold")
        return dict(claims)

    async def logout_url(self, id_token: str | None, after: str) -> str | None:
        """Where the browser goes to sign out at the provider too (RP-initiated logout), when its
        metadata has an end_session_endpoint; None otherwise, or when it cannot be read."""
        try:
            metadata = await self.metadata()
        except OidcProblem:
            return None
        if metadata.end_session_endpoint is None:
            return None
        params = {"client_id": self.client_id, "post_logout_redirect_uri": after}
        if id_token:
            params["id_token_hint"] = id_token
        return str(httpx2.URL(metadata.end_session_endpoint, params=params))


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)


def _key_for(keys: KeySet, kid: str | None, alg: str) -> Any:
    """The key the token names; without a key id, the provider's only key of the alg's type."""
    kty = "RSA" if alg[:2] in ("RS", "PS") else "EC" if alg[:2] == "ES" else "OKP"
    if kid is not None:
        found = [k for k in keys.keys if k.kid == kid]
    else:
        found = [k for k in keys.keys if k.key_type == kty]
    if len(found) != 1 or found[0].key_type != kty:
        raise OidcProblem("the ID token is signed with a key the provider does not publish")
    return found[0]
