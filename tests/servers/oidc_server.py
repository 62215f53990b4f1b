"""An OpenID Connect provider for the tests, on 127.0.0.1 (a free port, a thread), built on
Authlib's authorization server: the authorization code grant (RFC 6749) with PKCE required
(RFC 7636, S256 or plain as the client asks), OpenID Connect Core's `OpenIDCode` extension (an
RS256-signed ID token with the request's nonce), and RP-Initiated Logout's `EndSessionEndpoint`.

    with OidcServer(users={"dan": OidcUser("dan@example.com", groups=["sre"])}) as op:
        op.issuer                  # http://127.0.0.1:PORT (discovery at /.well-known/...)
        op.register(redirect_uri, post_logout_redirect_uri)   # the client: op.client_id/secret

Endpoints, as providers document them:
- GET /.well-known/openid-configuration: issuer, authorization_endpoint (/authorize),
  token_endpoint (/token), jwks_uri (/jwks), end_session_endpoint (/logout, unless
  `end_session=False`), id_token_signing_alg_values_supported [RS256], code_challenge_methods
  [S256], token_endpoint_auth_methods [client_secret_basic, client_secret_post].
- GET /authorize: Authlib validates the request (client, redirect_uri, response_type, PKCE,
  nonce reuse) and, without a provider session, shows a login form the browser fills
  (username, password); POST /authorize signs in (a provider session cookie) and redirects
  back with code and state. Errors go back to the redirect_uri as `error=` when it is the
  client's, else as a 400 page.
- POST /token: the code (once, 60 s), its PKCE verifier and the client's secret -> access_token,
  id_token (kid of the current key), token_type Bearer.
- GET /jwks: the published public keys. `rotate_keys(keep_old=...)` signs with a new key (a new
  kid) from then on.
- GET /logout: RP-initiated logout (id_token_hint, client_id, post_logout_redirect_uri, state):
  ends the provider session, notes the call in `logouts`, redirects to a registered
  post_logout_redirect_uri.

For the tests: `requests` (method, path) of every request; `count(path)`; `metadata_status`
(what discovery answers, 200 unless a test says); `tamper_next(fn)`
rewrites the next ID token: fn(header, claims) -> the token to send (forge it, expire it,
another audience or nonce).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from html import escape
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.rpinitiated.end_session import EndSessionEndpoint, EndSessionRequest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.servers.daemon import LoopbackThreadServer

# What a test does to the next ID token: (header, claims) -> the token sent instead.
Tamper = Callable[[dict[str, Any], dict[str, Any]], str]
_SESSION = "op_session"


@dataclass
class OidcUser:
    email: str
    password: str = "correct horse"
    groups: list[str] = field(default_factory=list)
    email_verified: bool = True
    sub: str = field(default_factory=lambda: secrets.token_hex(8))


def new_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8), "use": "sig"})


class _Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, client_id: str, secret: str, redirects: list[str], after: list[str]):
        self.client_id, self.secret, self.redirects = client_id, secret, redirects
        self.client_metadata = {"post_logout_redirect_uris": after}

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirects[0]

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"openid", "email", "profile", "groups"}
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirects

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), self.secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _Code(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float
    auth_time: int

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(
        self, method: str, uri: str, headers: Message, query: dict[str, str], form: dict[str, str]
    ):
        super().__init__(method, uri, headers=headers)
        self._query, self._form = query, form
        self.session = ""  # the provider's own session cookie, for its logout
        self.payload = BasicOAuth2Payload({**query, **form})

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


class OidcServer(LoopbackThreadServer):
    name = "the OIDC provider"

    def __init__(self, users: dict[str, OidcUser], *, end_session: bool = True) -> None:
        super().__init__()
        self.users = users
        self.end_session = end_session
        self.lock = threading.Lock()
        self.client_id = "followthrough"
        self.client_secret = secrets.token_urlsafe(24)
        self.clients: dict[str, _Client] = {}
        self.codes: dict[str, _Code] = {}
        self.sessions: dict[str, str] = {}  # provider session -> username
        self.signing_key = new_key()
        self.published: list[RSAKey] = [self.signing_key]
        self.requests: list[tuple[str, str]] = []
        self.logouts: list[dict[str, Any]] = []
        self.token_requests: list[dict[str, str]] = []
        self._tamper: Tamper | None = None
        self.metadata_status = 200  # what discovery answers (503: the provider is having a bad day)
        self.server = self._authorization_server()

    # -- for the tests ------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def register(self, redirect_uri: str, post_logout_redirect_uri: str) -> None:
        self.clients[self.client_id] = _Client(
            self.client_id, self.client_secret, [redirect_uri], [post_logout_redirect_uri]
        )

    def rotate_keys(self, keep_old: bool = True) -> None:
        with self.lock:
            self.signing_key = new_key()
            self.published = [self.signing_key, *(self.published if keep_old else [])]

    def tamper_next(self, tamper: Tamper) -> None:
        self._tamper = tamper

    def sign(self, header: dict[str, Any], claims: dict[str, Any], key: Any = None) -> str:
        return jwt.encode(header, claims, key or self.signing_key, algorithms=[header["alg"]])

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for _, p in self.requests if p == path)

    def jwks(self) -> dict[str, Any]:
        with self.lock:
            return dict(KeySet(list(self.published)).as_dict(private=False))

    # -- Authlib's server ---------------------------------------------------------------------

    def _authorization_server(self) -> AuthorizationServer:
        op = self

        class Server(AuthorizationServer):  # type: ignore[misc]
            def query_client(self, client_id: str) -> _Client | None:
                return op.clients.get(client_id)

            def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
                pass

            def create_oauth2_request(self, request: _Request) -> _Request:
                return request

            def create_json_request(self, request: Any) -> Any:
                raise NotImplementedError

            def handle_response(self, status: int, body: Any, headers: Any) -> Any:
                return status, body, list(headers)

            def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
                pass

        class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
                data = request.payload.data
                op.codes[code] = _Code(
                    code=code,
                    client_id=request.client.get_client_id(),
                    redirect_uri=data.get("redirect_uri", ""),
                    scope=request.scope,
                    user=request.user,
                    nonce=data.get("nonce"),
                    code_challenge=data.get("code_challenge"),
                    code_challenge_method=data.get("code_challenge_method"),
                    expires_at=time.time() + 60,
                    auth_time=int(time.time()),
                )

            def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
                found = op.codes.get(code)
                if found and found.client_id == client.get_client_id():
                    return found if found.expires_at > time.time() else None
                return None

            def delete_authorization_code(self, code: _Code) -> None:
                op.codes.pop(code.code, None)

            def authenticate_user(self, code: _Code) -> str:
                return code.user

        class Oidc(OpenIDCode):  # type: ignore[misc]
            def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
                return any(c.nonce == nonce for c in op.codes.values())

            def resolve_client_private_key(self, client: _Client) -> RSAKey:
                return op.signing_key

            def get_client_algorithm(self, client: _Client) -> str:
                return "RS256"

            def get_client_claims(self, client: _Client) -> dict[str, Any]:
                return {"iss": op.issuer, "aud": client.get_client_id()}

            def get_encode_header(self, client: _Client) -> dict[str, Any]:
                return {"alg": "RS256", "kid": op.signing_key.kid}

            def generate_user_info(self, user: str, scope: str) -> UserInfo:
                person = op.users[user]
                info = UserInfo(sub=person.sub, name=user)
                if "email" in scope:
                    info["email"], info["email_verified"] = person.email, person.email_verified
                info["groups"] = person.groups
                return info

            def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
                genuine = super().encode_id_token(token, request)
                tamper, op._tamper = op._tamper, None
                if tamper is None:
                    return str(genuine)
                decoded = jwt.decode(genuine, op.signing_key)
                return tamper(dict(decoded.header), dict(decoded.claims))

        class EndSession(EndSessionEndpoint):  # type: ignore[misc]
            def get_server_jwks(self) -> dict[str, Any]:
                return op.jwks()

            def end_session(self, request: EndSessionRequest) -> None:
                op.logouts.append(
                    {
                        "claims": request.id_token_claims,
                        "redirect_uri": request.redirect_uri,
                        "session": getattr(request.request, "session", None),
                    }
                )
                session = getattr(request.request, "session", None)
                if session:
                    op.sessions.pop(session, None)

        server = Server(scopes_supported=["openid", "email", "profile", "groups"])
        server.register_token_generator(
            "default", BearerTokenGenerator(lambda *a, **k: secrets.token_urlsafe(32))
        )
        server.register_grant(CodeGrant, [CodeChallenge(required=True), Oidc(require_nonce=True)])
        server.register_endpoint(EndSession)
        return server

    def metadata(self) -> dict[str, Any]:
        found = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "email", "email_verified", "name", "groups"],
        }
        if self.end_session:
            found["end_session_endpoint"] = f"{self.issuer}/logout"
        return found

    # -- HTTP ---------------------------------------------------------------------------------

    def open(self) -> tuple[ThreadingHTTPServer, threading.Thread]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name=self.name, daemon=True
        )
        thread.start()
        return server, thread

    def handle(
        self, method: str, path: str, query: dict[str, str], form: dict[str, str], headers: Message
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        with self.lock:
            self.requests.append((method, path))
        uri = f"{self.issuer}{path}"
        request = _Request(method, uri, headers, query, form)
        cookies = SimpleCookie(headers.get("Cookie", ""))
        session = cookies[_SESSION].value if _SESSION in cookies else ""
        request.session = session
        if path == "/.well-known/openid-configuration" and method == "GET":
            if self.metadata_status != 200:
                return self.metadata_status, {"error": "unavailable"}, []
            return 200, self.metadata(), [("Content-Type", "application/json")]
        if path == "/jwks" and method == "GET":
            return 200, self.jwks(), [("Content-Type", "application/json")]
        if path == "/token" and method == "POST":
            self.token_requests.append(dict(form))
            return self.server.create_token_response(request)  # type: ignore[no-any-return]
        if path == "/authorize":
            return self._authorize(request, session, method, form)
        if path == "/logout" and self.end_session:
            try:
                validated = self.server.validate_endpoint_request("end_session", request)
            except OAuth2Error as error:
                return self.server.handle_error_response(request, error)  # type: ignore[no-any-return]
            answer = self.server.create_endpoint_response("end_session", validated)
            return answer or (200, "<p>You are signed out.</p>", [("Content-Type", "text/html")])
        return 404, {"error": "not_found"}, [("Content-Type", "application/json")]

    def _authorize(
        self, request: _Request, session: str, method: str, form: dict[str, str]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        user = self.sessions.get(session) if session else None
        problem = ""
        if method == "POST":
            name, password = form.get("username", ""), form.get("password", "")
            found = self.users.get(name)
            if found is not None and hmac.compare_digest(found.password, password):
                user = name
                session = secrets.token_urlsafe(16)
                self.sessions[session] = name
            else:
                problem = "Wrong username or password."
        try:
            grant = self.server.get_consent_grant(request, end_user=user)
        except OAuth2Error as error:
            return (
                400,
                f"<p>{escape(error.error)}: {escape(error.description or '')}</p>",
                [("Content-Type", "text/html")],
            )
        if user is None:
            return (
                200,
                _login_form(request.args if method == "GET" else form, problem),
                [("Content-Type", "text/html")],
            )
        status, body, headers = self.server.create_authorization_response(
            request, grant_user=user, grant=grant
        )
        headers.append(("Set-Cookie", f"{_SESSION}={session}; Path=/; HttpOnly; SameSite=Lax"))
        return status, body, headers


def _login_form(params: dict[str, str], problem: str) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
        for k, v in params.items()
        if k not in ("username", "password")
    )
    said = f'<p role="alert">{escape(problem)}</p>' if problem else ""
    return (
        "<!doctype html><title>Test provider: sign in</title><h1>Test provider</h1>"
        f'{said}<form method="post" action="/authorize">{hidden}'
        '<label>Username <input name="username"></label>'
        '<label>Password <input name="password" type="password"></label>'
        '<button type="submit">Log in</button></form>'
    )


def _handler_for(op: OidcServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            form: dict[str, str] = {}
            if method == "POST":
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
            status, body, headers = op.handle(method, parts.path, query, form, self.headers)
            if isinstance(body, dict):
                import json

                body = json.dumps(body)
                if not any(k.lower() == "content-type" for k, _ in headers):
                    headers.append(("Content-Type", "application/json"))
            data = (body or "").encode()
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            if not any(k.lower() == "content-type" for k, _ in headers):
                self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler
