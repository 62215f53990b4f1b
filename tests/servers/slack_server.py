"""A Slack-Web-API-compatible server for the tests, on 127.0.0.1 (a free port, a thread).

    with SlackServer(token="xoxb-test", users={"U0BOB": "bob@example.com"},
                     channels={"C0PAY"}) as slack:
        WebClient(token="xoxb-test", base_url=slack.api_url).chat_postMessage(...)
        assert slack.posted[0]["channel"] == "D0BOB"

It serves what Followthrough calls, as Slack documents it (https://docs.slack.dev/reference/
methods): POST/GET /api/{method} with the bot token as `Authorization: Bearer`, arguments as
JSON, form fields or the query string; HTTP 200 with {"ok": true, ...} or {"ok": false,
"error": "..."}.

- chat.postMessage: `channel` a user id (U.../W...: the bot's DM with them, answered as channel
  D...), a known channel id, or `#name`; `text` and/or `blocks`; `thread_ts` replies in a
  thread. Answers {"channel", "ts", "message"}. Unknown user or channel: channel_not_found;
  nothing to say: no_text.
- chat.update (channel, ts): message_not_found for a ts never posted there.
- chat.postEphemeral (channel, user): {"message_ts"}.
- views.open (trigger_id, view): {"view"}, the view as Slack keeps it (an id, an empty state).
  A view Slack would refuse is invalid_arguments with the reason in response_metadata.messages:
  a modal needs a plain_text title of at most 24 characters, a submit button once it has input
  blocks, callback_id <= 255 and private_metadata <= 3000 characters, at most 100 blocks; an
  input block a block_id, a plain_text label <= 2000 and an element Followthrough uses
  (plain_text_input, max_length <= 3000; datepicker, initial_date YYYY-MM-DD).
- users.lookupByEmail (email): {"user": {...}} or users_not_found; users.info (user): {"user":
  {"id", "name", "real_name", "profile": {"email", "real_name", "display_name"}}} or
  user_not_found (names from `names`, else the email's local part).
- auth.test: {"url": "https://followthrough-test.slack.com/", "team", "user", "team_id",
  "user_id", "bot_id"}.
- conversations.list (cursor, limit 1..1000 else invalid_limit, types: public_channel and/or
  private_channel, default public only; exclude_archived): {"channels": [{"id", "name",
  "is_channel", "is_private", "is_archived", "is_member", "created", ...}], "response_metadata":
  {"next_cursor"}}, the cursor empty after the last page; a cursor it did not give:
  invalid_cursor.
- conversations.history (channel, oldest default 0, latest default now, inclusive, limit
  1..999 default 100, cursor): {"messages" newest first, "has_more", "pin_count",
  "response_metadata": {"next_cursor"}}; messages carry "type", "user" (or "bot_id" and
  "username"), "text", "ts", optional "subtype" and "reactions" [{"name", "users", "count"}].
  Unknown channel: channel_not_found; a channel the bot is not in: not_in_channel; a ts that is
  not one: invalid_ts_oldest / invalid_ts_latest; invalid_cursor as above.
- A wrong or missing token: invalid_auth (not_authed when missing).
- `rate_limit_next(n, retry_after=1, method=None)`: the next n calls (of `method` only, when
  given: Slack limits each method on its own) answer HTTP 429 {"ok": false, "error":
  "ratelimited"} with `Retry-After`, as Slack does.
- Anything else: 404 {"ok": false, "error": "unknown_method"}.

`add_channel(id, name, member=True, private=False, archived=False, created=0)` and
`add_message(channel, ts, text, user=None, reactions=None, **fields)` set up what conversations.*
read (messages posted with chat.postMessage stay in `posted`).

For the tests: `posted` (every message, updated in place by chat.update, replies included),
`updates`, `ephemeral`, `views`, `calls` (method names, the 429s too), `limited` (the 429s).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers.daemon import LoopbackThreadServer


class SlackServer(LoopbackThreadServer):
    name = "the Slack server"

    def __init__(
        self,
        *,
        token: str,
        users: dict[str, str] | None = None,
        channels: set[str] | None = None,
        names: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.token = token
        self.users = dict(users or {})  # user id -> email
        self.channels = set(channels or set())  # channel ids and #names
        self.names = dict(names or {})  # user id -> the name Slack shows
        self.conversations: list[dict[str, Any]] = []  # what conversations.list lists
        self.history: dict[str, list[dict[str, Any]]] = {}  # channel id -> its messages
        self.lock = threading.Lock()
        self.posted: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.ephemeral: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self._limited = 0
        self.limited: list[str] = []  # the calls answered 429
        self._retry_after = 1
        self._limited_method: str | None = None
        self._counter = 0

    def open(self) -> tuple[ThreadingHTTPServer, threading.Thread]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="slack-server", daemon=True
        )
        thread.start()
        return server, thread

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def rate_limit_next(self, n: int, retry_after: int = 1, method: str | None = None) -> None:
        with self.lock:
            self._limited, self._retry_after = n, retry_after
            self._limited_method = method

    def messages_in(self, channel: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.posted if m["channel"] == channel and not m.get("thread_ts")]

    def add_channel(
        self,
        channel: str,
        name: str,
        *,
        member: bool = True,
        private: bool = False,
        archived: bool = False,
        created: int = 0,
    ) -> None:
        with self.lock:
            self.channels.update({channel, f"#{name}"})
            self.history.setdefault(channel, [])
            self.conversations.append(
                {
                    "id": channel,
                    "name": name,
                    "name_normalized": name,
                    "is_channel": not private,
                    "is_group": private,
                    "is_im": False,
                    "is_private": private,
                    "is_archived": archived,
                    "is_member": member,
                    "created": created,
                    "num_members": 3,
                }
            )

    def add_message(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        user: str | None = None,
        reactions: dict[str, list[str]] | None = None,
        **fields: Any,
    ) -> None:
        """A message in the channel's history; `reactions` maps an emoji name to who reacted."""
        message: dict[str, Any] = {"type": "message", "text": text, "ts": ts, **fields}
        if user is not None:
            message["user"] = user
        if reactions:
            message["reactions"] = [
                {"name": name, "users": users, "count": len(users)}
                for name, users in reactions.items()
            ]
        with self.lock:
            self.history[channel].append(message)

    # -- the API ----------------------------------------------------------------------------

    def answer(
        self, method: str, token: str | None, args: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            self.calls.append(method)
            if self._limited > 0 and self._limited_method in (None, method):
                self._limited -= 1
                self.limited.append(method)
                headers = {"Retry-After": str(self._retry_after)}
                return 429, {"ok": False, "error": "ratelimited"}, headers
        handler = _METHODS.get(method)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method"}, {}
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token != self.token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        with self.lock:
            return 200, handler(self, args), {}

    def _ts(self) -> str:
        self._counter += 1
        return f"1700000000.{self._counter:06d}"

    def _channel(self, channel: str) -> str | None:
        if channel[:1] in ("U", "W"):
            return "D" + channel[1:] if channel in self.users else None
        if channel.startswith("D") and ("U" + channel[1:]) in self.users:
            return channel
        return channel if channel in self.channels else None

    def _post(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        blocks = args.get("blocks")
        message = {
            "channel": channel,
            "ts": self._ts(),
            "text": args.get("text", ""),
            "blocks": json.loads(blocks) if isinstance(blocks, str) else (blocks or []),
            "thread_ts": args.get("thread_ts"),
        }
        self.posted.append(message)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        for message in self.posted:
            if message["channel"] == args.get("channel") and message["ts"] == args.get("ts"):
                blocks = args.get("blocks")
                message["text"] = args.get("text", message["text"])
                if blocks is not None:
                    message["blocks"] = json.loads(blocks) if isinstance(blocks, str) else blocks
                self.updates.append(dict(message))
                return {"ok": True, "channel": message["channel"], "ts": message["ts"]}
        return {"ok": False, "error": "message_not_found"}

    def _ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if self._channel(str(args.get("channel", ""))) is None:
            return {"ok": False, "error": "channel_not_found"}
        if args.get("user") not in self.users:
            return {"ok": False, "error": "user_not_in_channel"}
        self.ephemeral.append(dict(args))
        return {"ok": True, "message_ts": self._ts()}

    def _view(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        if not args.get("trigger_id") or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if problems := _view_problems(view):
            messages = [f"[ERROR] {p}" for p in problems]
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": messages},
            }
        self.views.append({"trigger_id": args["trigger_id"], "view": view})
        self._counter += 1
        kept = {"id": f"V{self._counter:08d}", **view, "state": {"values": {}}}
        return {"ok": True, "view": kept}

    def _lookup(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email", "")).lower()
        for user, address in self.users.items():
            if address.lower() == email:
                return {"ok": True, "user": _user(user, address)}
        return {"ok": False, "error": "users_not_found"}

    def _info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user", ""))
        if user not in self.users:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": _user(user, self.users[user], self.names.get(user))}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://followthrough-test.slack.com/",
            "team": "Followthrough Test",
            "user": "followthrough",
            "team_id": "T0TEST",
            "user_id": "U0FOLLOW",
            "bot_id": "B0FOLLOW",
        }

    def _list(self, args: dict[str, Any]) -> dict[str, Any]:
        limit = _integer(args.get("limit"), 100)
        if limit is None or not 1 <= limit <= 1000:
            return {"ok": False, "error": "invalid_limit"}
        types = set(str(args.get("types") or "public_channel").split(","))
        if not types <= {"public_channel", "private_channel", "mpim", "im"}:
            return {"ok": False, "error": "invalid_types"}
        archived_too = not _true(args.get("exclude_archived"))
        listed = [
            c
            for c in self.conversations
            if ("private_channel" if c["is_private"] else "public_channel") in types
            and (archived_too or not c["is_archived"])
        ]
        return _paged(listed, "channels", args.get("cursor"), limit)

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if channel not in self.history:
            return {"ok": False, "error": "channel_not_found"}
        if not any(c["id"] == channel and c["is_member"] for c in self.conversations):
            return {"ok": False, "error": "not_in_channel"}
        limit = _integer(args.get("limit"), 100)
        if limit is None or not 1 <= limit <= 999:
            return {"ok": False, "error": "invalid_limit"}
        oldest, latest = _moment(args.get("oldest"), 0.0), _moment(args.get("latest"), 1e12)
        if oldest is None:
            return {"ok": False, "error": "invalid_ts_oldest"}
        if latest is None:
            return {"ok": False, "error": "invalid_ts_latest"}
        inclusive = _true(args.get("inclusive"))

        def within(ts: float) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        messages = sorted(
            (m for m in self.history[channel] if within(float(m["ts"]))),
            key=lambda m: float(m["ts"]),
            reverse=True,
        )
        answer = _paged(messages, "messages", args.get("cursor"), limit)
        if answer["ok"]:
            answer["has_more"] = bool(answer["response_metadata"]["next_cursor"])
            answer["pin_count"] = 0
        return answer


def _plain(text: Any, limit: int) -> bool:
    return (
        isinstance(text, dict)
        and text.get("type") == "plain_text"
        and isinstance(text.get("text"), str)
        and 0 < len(text["text"]) <= limit
    )


def _view_problems(view: dict[str, Any]) -> list[str]:
    """What Slack's views.open would refuse in a modal (the parts Followthrough uses)."""
    problems = []
    if view.get("type") != "modal":
        problems.append("must be a modal [json-pointer:/view/type]")
    if not _plain(view.get("title"), 24):
        problems.append("title: plain_text of at most 24 characters [json-pointer:/view/title]")
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("callback_id: at most 255 characters [json-pointer:/view/callback_id]")
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("private_metadata: at most 3000 characters")
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or len(blocks) > 100:
        return [*problems, "blocks: a list of at most 100 [json-pointer:/view/blocks]"]
    inputs = [b for b in blocks if isinstance(b, dict) and b.get("type") == "input"]
    if inputs and not _plain(view.get("submit"), 24):
        problems.append("submit is required with input blocks [json-pointer:/view/submit]")
    for n, block in enumerate(inputs):
        where = f"[json-pointer:/view/blocks/{n}]"
        element = block.get("element") or {}
        if not block.get("block_id") or not _plain(block.get("label"), 2000):
            problems.append(f"an input block needs a block_id and a plain_text label {where}")
        if element.get("type") == "plain_text_input":
            if int(element.get("max_length", 3000)) > 3000:
                problems.append(f"max_length: at most 3000 {where}")
        elif element.get("type") == "datepicker":
            initial = str(element.get("initial_date", "2000-01-01"))
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", initial):
                problems.append(f"initial_date: YYYY-MM-DD {where}")
        else:
            problems.append(f"unsupported element type {element.get('type')!r} {where}")
    return problems


def _user(user: str, email: str, name: str | None = None) -> dict[str, Any]:
    handle = email.split("@")[0]
    shown = name or handle
    return {
        "id": user,
        "name": handle,
        "real_name": shown,
        "profile": {"email": email, "real_name": shown, "display_name": name or ""},
    }


def _integer(value: Any, default: int) -> int | None:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _true(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


def _moment(value: Any, default: float) -> float | None:
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _paged(entries: list[dict[str, Any]], key: str, cursor: Any, limit: int) -> dict[str, Any]:
    """One page of a cursor-paginated answer: Slack's cursors are opaque base64 strings; these
    encode the offset of the page they start."""
    start = 0
    if cursor:
        try:
            decoded = base64.b64decode(str(cursor), validate=True).decode()
            start = int(decoded.removeprefix("next:"))
        except ValueError:
            return {"ok": False, "error": "invalid_cursor"}
        if not decoded.startswith("next:") or not 0 <= start <= len(entries):
            return {"ok": False, "error": "invalid_cursor"}
    end = start + limit
    following = base64.b64encode(f"next:{end}".encode()).decode() if end < len(entries) else ""
    return {
        "ok": True,
        key: [dict(entry) for entry in entries[start:end]],
        "response_metadata": {"next_cursor": following},
    }


_METHODS = {
    "chat.postMessage": SlackServer._post,
    "chat.update": SlackServer._update,
    "chat.postEphemeral": SlackServer._ephemeral,
    "views.open": SlackServer._view,
    "users.lookupByEmail": SlackServer._lookup,
    "users.info": SlackServer._info,
    "auth.test": SlackServer._auth_test,
    "conversations.list": SlackServer._list,
    "conversations.history": SlackServer._history,
}


def _handler_for(slack: SlackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            args: dict[str, Any] = {k: v[0] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            kind = self.headers.get("Content-Type", "")
            if body and "json" in kind:
                args.update(json.loads(body))
            elif body:
                args.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
            token = token or args.pop("token", None)
            method = parts.path.removeprefix("/api/")
            code, answer, headers = slack.answer(method, token, args)
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


__all__ = ["SlackServer"]
