"""The endpoints of the fake WeChat API beyond the access_token (see tests/fakewechat.py).

Each one checks the access_token, answers the way API.md says WeChat does, and records what
it accepted:

==============================================  =========================================
``POST /cgi-bin/message/custom/send``           :attr:`messages`
``POST /cgi-bin/message/custom/typing``,        :attr:`typing`
``.../custom/business/typing``
``POST /cgi-bin/message/template/send``         :attr:`templates`; answers a ``msgid``, and
                                                sends a ``client_msg_id`` once per user
``POST /cgi-bin/message/subscribe/send``,       :attr:`subscribe_messages`,
``.../subscribe/bizsend``                       :attr:`subscribe_notices`
``POST /cgi-bin/media/upload?type=``            :attr:`uploads`: multipart, part ``media``
                                                (41005 without it, 40004 for a bad type)
``GET /cgi-bin/media/get?media_id=``            the file with its Content-Type and
                                                Content-disposition; a video as JSON
                                                ``video_url``; 40007 as text/plain JSON
``GET /cgi-bin/user/info``, ``POST .../batchget``  users from :meth:`add_user`; 40003
``POST /cgi-bin/qrcode/create``                 :attr:`qrcodes`; 40053 for a bad scene
``GET /cgi-bin/showqrcode?ticket=`` (no token)  a JPEG; HTTP 404 for an unknown ticket
``POST /cgi-bin/menu/create``, ``GET .../get``,  :attr:`menu`; get answers 46003 without one
``GET .../delete``
==============================================  =========================================
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SEND_PATH = "/cgi-bin/message/custom/send"
TYPING_PATH = "/cgi-bin/message/custom/typing"
MP_TYPING_PATH = "/cgi-bin/message/custom/business/typing"
TEMPLATE_PATH = "/cgi-bin/message/template/send"
SUBSCRIBE_PATH = "/cgi-bin/message/subscribe/send"
BIZSEND_PATH = "/cgi-bin/message/subscribe/bizsend"
MEDIA_UPLOAD_PATH = "/cgi-bin/media/upload"
MEDIA_GET_PATH = "/cgi-bin/media/get"
USER_INFO_PATH = "/cgi-bin/user/info"
USER_BATCH_PATH = "/cgi-bin/user/info/batchget"
QRCODE_PATH = "/cgi-bin/qrcode/create"
SHOWQRCODE_PATH = "/cgi-bin/showqrcode"
MENU_CREATE_PATH = "/cgi-bin/menu/create"
MENU_GET_PATH = "/cgi-bin/menu/get"
MENU_DELETE_PATH = "/cgi-bin/menu/delete"
#: Where the fake serves videos; WeChat answers a CDN URL.
VIDEO_PATH = "/fake-cdn/video/"

_OK = {"errcode": 0, "errmsg": "ok"}
_QR_ACTIONS = {
    "QR_SCENE": "scene_id",
    "QR_STR_SCENE": "scene_str",
    "QR_LIMIT_SCENE": "scene_id",
    "QR_LIMIT_STR_SCENE": "scene_str",
}
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "audio/amr": "amr", "video/mp4": "mp4"}


@dataclass(frozen=True)
class Part:
    """The file part of a multipart body."""

    name: str
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Received:
    """One request as the fake saw it, and what it answered."""

    method: str
    path: str
    #: The query string, first value of each name (``access_token`` and ``secret`` included).
    query: dict[str, str]
    #: The decoded JSON body; None for a GET, a multipart body or a body that is not JSON.
    body: Any
    #: The errcode answered (0 for success and files), None when the connection was dropped.
    errcode: int | None
    #: The file of a multipart body.
    upload: Part | None = None


@dataclass(frozen=True)
class Request:
    """What a route reads: the JSON body is ``{}`` when there is none."""

    path: str
    query: dict[str, str]
    body: dict[str, Any]
    upload: Part | None


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    errcode: int = 0


@dataclass(frozen=True)
class Media:
    """A media file the fake holds."""

    media_id: str
    type: str
    filename: str
    content_type: str
    content: bytes


def json_reply(
    answer: dict[str, Any], *, status: int = 200, content_type: str = "application/json"
) -> Reply:
    data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
    errcode = int(answer.get("errcode", 0))
    return Reply(status, data, f"{content_type}; encoding=utf-8", errcode=errcode)


def parse_multipart(content_type: str, raw: bytes) -> Part | None:
    """The first file part of a ``multipart/form-data`` body, byte for byte, or None."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        return None
    delimiter = b"--" + match.group(1).encode("latin-1")
    for chunk in raw.split(delimiter)[1:-1]:
        head, _, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = head.decode("utf-8", "replace")
        name = re.search(r'name="([^"]*)"', headers)
        filename = re.search(r'filename="([^"]*)"', headers)
        ctype = re.search(r"(?im)^content-type:\s*(\S+)", headers)
        if name and filename:
            return Part(
                name.group(1),
                filename.group(1),
                ctype.group(1) if ctype else "application/octet-stream",
                content.removesuffix(b"\r\n"),
            )
    return None


class Endpoints:
    """The endpoints, as a base of :class:`tests.fakewechat.FakeWeChat` (which supplies
    ``url`` and ``_check_token``). Every method runs under ``self._lock``."""

    url: str

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._typing: list[dict[str, Any]] = []
        self._templates: list[dict[str, Any]] = []
        self._template_ids: dict[tuple[str, str], int] = {}
        self._subscribe_messages: list[dict[str, Any]] = []
        self._subscribe_notices: list[dict[str, Any]] = []
        self._media: dict[str, Media] = {}
        self._uploads: list[Media] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._qrcodes: dict[str, dict[str, Any]] = {}
        self._menu: dict[str, Any] | None = None
        self._msgids = itertools.count(2_000_000_001)

    def _check_token(self, token: str | None) -> dict[str, Any] | None:
        raise NotImplementedError

    # -- seeding ----------------------------------------------------------------------------

    def add_user(self, openid: str, **fields: Any) -> None:
        """Make ``openid`` a user; ``fields`` join ``openid`` and ``subscribe: 1``."""
        with self._lock:
            self._users[openid] = {"subscribe": 1, "openid": openid, **fields}

    def add_media(
        self, content: bytes, *, type: str = "image", content_type: str = "image/jpeg"
    ) -> str:
        """Hold a media file as if uploaded; returns its media_id."""
        with self._lock:
            return self._store_media(type, "", content_type, content).media_id

    # -- observations -----------------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Bodies of the customer-service messages accepted, in order."""
        with self._lock:
            return list(self._messages)

    @property
    def typing(self) -> list[dict[str, Any]]:
        """Bodies of the typing-indicator calls accepted (either path), in order."""
        with self._lock:
            return list(self._typing)

    @property
    def templates(self) -> list[dict[str, Any]]:
        """Bodies of the template messages sent (a repeated client_msg_id only once)."""
        with self._lock:
            return list(self._templates)

    @property
    def subscribe_messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._subscribe_messages)

    @property
    def subscribe_notices(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._subscribe_notices)

    @property
    def uploads(self) -> list[Media]:
        """Media uploaded, in order."""
        with self._lock:
            return list(self._uploads)

    @property
    def qrcodes(self) -> dict[str, dict[str, Any]]:
        """Ticket -> the body that created it."""
        with self._lock:
            return dict(self._qrcodes)

    @property
    def menu(self) -> dict[str, Any] | None:
        """The menu created and not deleted."""
        with self._lock:
            return self._menu

    # -- dispatch ---------------------------------------------------------------------------

    def _endpoint(
        self, method: str, path: str, query: dict[str, str], body: Any, upload: Part | None
    ) -> Reply:
        if (method, path) == ("GET", SHOWQRCODE_PATH):
            return self._showqrcode(query)
        if method == "GET" and path.startswith(VIDEO_PATH):
            return self._video(path.removeprefix(VIDEO_PATH))
        routes: dict[tuple[str, str], Callable[[Request], Reply]] = {
            ("POST", SEND_PATH): self._custom_send,
            ("POST", TYPING_PATH): self._typing_indicator,
            ("POST", MP_TYPING_PATH): self._typing_indicator,
            ("POST", TEMPLATE_PATH): self._template,
            ("POST", SUBSCRIBE_PATH): self._subscribe,
            ("POST", BIZSEND_PATH): self._subscribe,
            ("POST", MEDIA_UPLOAD_PATH): self._upload,
            ("GET", MEDIA_GET_PATH): self._get_media,
            ("GET", USER_INFO_PATH): self._user_info,
            ("POST", USER_BATCH_PATH): self._users_info,
            ("POST", QRCODE_PATH): self._create_qrcode,
            ("POST", MENU_CREATE_PATH): self._create_menu,
            ("GET", MENU_GET_PATH): self._get_menu,
            ("GET", MENU_DELETE_PATH): self._delete_menu,
        }
        route = routes.get((method, path))
        if route is None:
            answer = {"errcode": 404, "errmsg": f"no such API: {method} {path}"}
            return json_reply(answer, status=404)
        refused = self._check_token(query.get("access_token"))
        if refused is not None:
            return json_reply(refused)
        if method == "POST" and path != MEDIA_UPLOAD_PATH and not isinstance(body, dict):
            return json_reply({"errcode": 47001, "errmsg": "data format error"})
        return route(Request(path, query, body if isinstance(body, dict) else {}, upload))

    # -- messages ---------------------------------------------------------------------------

    def _custom_send(self, request: Request) -> Reply:
        self._messages.append(request.body)
        return json_reply(dict(_OK))

    def _typing_indicator(self, request: Request) -> Reply:
        if request.body.get("command") not in ("Typing", "CancelTyping"):
            return json_reply({"errcode": 45072, "errmsg": "command invalid"})
        self._typing.append(request.body)
        return json_reply(dict(_OK))

    def _template(self, request: Request) -> Reply:
        body = request.body
        dedupe = (body.get("touser", ""), body.get("client_msg_id", ""))
        if dedupe[1] and dedupe in self._template_ids:
            return json_reply({**_OK, "msgid": self._template_ids[dedupe]})
        msgid = next(self._msgids)
        if dedupe[1]:
            self._template_ids[dedupe] = msgid
        self._templates.append(body)
        return json_reply({**_OK, "msgid": msgid})

    def _subscribe(self, request: Request) -> Reply:
        notice = request.path == BIZSEND_PATH
        (self._subscribe_notices if notice else self._subscribe_messages).append(request.body)
        return json_reply(dict(_OK))

    # -- media ------------------------------------------------------------------------------

    def _store_media(self, kind: str, filename: str, content_type: str, content: bytes) -> Media:
        media_id = "MEDIA_" + secrets.token_urlsafe(16)
        ext = _EXTENSIONS.get(content_type, "bin")
        media = Media(media_id, kind, filename or f"{media_id}.{ext}", content_type, content)
        self._media[media_id] = media
        return media

    def _upload(self, request: Request) -> Reply:
        kind, upload = request.query.get("type", ""), request.upload
        if kind not in ("image", "voice", "video", "thumb"):
            return json_reply({"errcode": 40004, "errmsg": "invalid media type"})
        if upload is None or upload.name != "media":
            return json_reply({"errcode": 41005, "errmsg": "media data missing"})
        media = self._store_media(kind, upload.filename, upload.content_type, upload.content)
        self._uploads.append(media)
        key = "thumb_media_id" if kind == "thumb" else "media_id"
        return json_reply({"type": kind, key: media.media_id, "created_at": int(time.time())})

    def _get_media(self, request: Request) -> Reply:
        media = self._media.get(request.query.get("media_id", ""))
        if media is None:
            answer = {"errcode": 40007, "errmsg": "invalid media_id"}
            return json_reply(answer, content_type="text/plain")
        if media.type == "video":
            return json_reply({"video_url": f"{self.url}{VIDEO_PATH}{media.media_id}"})
        disposition = f'attachment; filename="{media.filename}"'
        headers = {"Content-disposition": disposition}
        return Reply(200, media.content, media.content_type, headers)

    def _video(self, media_id: str) -> Reply:
        media = self._media.get(media_id)
        if media is None:
            return Reply(404, b"not found", "text/html")
        return Reply(200, media.content, media.content_type)

    # -- users ------------------------------------------------------------------------------

    def _user_info(self, request: Request) -> Reply:
        user = self._users.get(request.query.get("openid", ""))
        if user is None:
            return json_reply({"errcode": 40003, "errmsg": "invalid openid"})
        return json_reply(dict(user))

    def _users_info(self, request: Request) -> Reply:
        wanted = [entry.get("openid", "") for entry in request.body.get("user_list", [])]
        if not wanted or len(wanted) > 100 or any(o not in self._users for o in wanted):
            return json_reply({"errcode": 40003, "errmsg": "invalid openid"})
        return json_reply({"user_info_list": [dict(self._users[o]) for o in wanted]})

    # -- QR codes ---------------------------------------------------------------------------

    def _create_qrcode(self, request: Request) -> Reply:
        body = request.body
        field_name = _QR_ACTIONS.get(body.get("action_name", ""))
        scene = body.get("action_info", {}).get("scene", {})
        if field_name is None or field_name not in scene:
            return json_reply({"errcode": 40053, "errmsg": "invalid action info"})
        # Real tickets are base64: '+', '/' and '=' must survive the image URL.
        ticket = "gQ+/" + secrets.token_urlsafe(24) + "=="
        self._qrcodes[ticket] = body
        answer: dict[str, Any] = {"ticket": ticket, "url": f"http://weixin.qq.com/q/{ticket[4:20]}"}
        if not body["action_name"].startswith("QR_LIMIT_"):
            answer["expire_seconds"] = body.get("expire_seconds", 60)
        return json_reply(answer)

    def _showqrcode(self, query: dict[str, str]) -> Reply:
        ticket = query.get("ticket", "")
        if ticket not in self._qrcodes:
            return Reply(404, b"<html>not found</html>", "text/html")
        return Reply(200, b"\xff\xd8\xff\xe0FAKEJPEG:" + ticket.encode(), "image/jpg")

    # -- menus ------------------------------------------------------------------------------

    def _create_menu(self, request: Request) -> Reply:
        body = request.body
        if not body.get("button"):
            return json_reply({"errcode": 40016, "errmsg": "invalid button size"})
        self._menu = body
        return json_reply(dict(_OK))

    def _get_menu(self, request: Request) -> Reply:
        if self._menu is None:
            return json_reply({"errcode": 46003, "errmsg": "menu no exist"})
        return json_reply({"menu": {**self._menu, "menuid": 208396938}})

    def _delete_menu(self, request: Request) -> Reply:
        self._menu = None
        return json_reply(dict(_OK))
