"""The callback URL: WeChat's GET handshake and POSTed pushes, on one route per account.

The blueprint is registered once per account, at the account's path, with the account's name
as the ``account`` URL default (:mod:`app.extension`), so one view serves them all and finds
the account's service by that name.

Every refusal is a :class:`~app.wechat.errors.WeChatError` raised somewhere in the pipeline and
turned into its status and one log line by one error handler here, so no 4xx is decided in two
places and nothing a client sends can produce a 500.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Mapping

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from config import Settings

from . import metrics, scope
from .lifecycle.ledger import SUCCESS, Answer
from .lifecycle.service import WeChatService
from .wechat.envelope import open_push, verify_handshake
from .wechat.errors import BodyTooLarge, UnreadableBody, WeChatError
from .wechat.messages import Event, Message, UnknownEvent, UnknownMessage, parse_message

logger = logging.getLogger(__name__)

bp = Blueprint("wechat", __name__)


def _service(account: str) -> WeChatService:
    service: WeChatService = current_app.extensions["wechat"][account]
    return service


def _account() -> str:
    """The name of the account the current request was routed to."""
    return str((request.view_args or {}).get("account", ""))


@bp.route("", methods=["GET", "POST"])
def callback(account: str) -> Response:
    """Answer the console's handshake, or a push with "success" or a passive reply."""
    with scope.serving(account):
        return _answer(_service(account))


def _answer(service: WeChatService) -> Response:
    """The callback for the account ``service`` serves."""
    settings = service.settings
    clock = service.clock
    started = clock.monotonic() - _queued_for(settings.deadline, clock.time())
    now = int(clock.time())
    query = _query()
    if request.method == "GET":
        echostr = verify_handshake(
            query, settings.token, now=now, tolerance=settings.timestamp_tolerance
        )
        return Response(echostr, mimetype="text/plain")
    body = _read_body(settings.max_body)
    push = open_push(
        query,
        body,
        service.account,
        now=now,
        tolerance=settings.timestamp_tolerance,
        require_encryption=settings.require_encryption,
    )
    message = parse_message(push.fields)
    answer = service.answer(push, message, deadline=started + settings.deadline)
    _log_push(settings, message, answer, clock.monotonic() - started)
    if answer is None:
        return _lapse()
    return Response(answer.body, mimetype=answer.mimetype)


def _query() -> Mapping[str, str]:
    """The query's parameters, the first value of each, as ``request.args`` gives them.

    WeChat's query is a few ASCII parameters with nothing escaped, which a split reads as
    Werkzeug would, for a fifth of the cost of its parser and MultiDict. A query holding an
    escape (``%`` or ``+``) or anything not ASCII is left to ``request.args``.
    """
    raw: str = request.environ.get("QUERY_STRING", "")
    if "%" in raw or "+" in raw or not raw.isascii():
        return request.args
    query: dict[str, str] = {}
    for pair in raw.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            query.setdefault(name, value)
    return query


def _read_body(limit: int) -> bytes:
    """The request body, refused with 413 when it is over ``limit`` however it is framed.

    The limit is this request's own, not the app's MAX_CONTENT_LENGTH, which belongs to an
    application that embeds the service. With ``Content-Length`` Werkzeug refuses an oversize
    body before reading it. A chunked body has no length to check, and Werkzeug's limited stream
    just stops at the limit, so one byte more is asked of the server's own stream: if it has
    one, the body was cut, not complete.
    """
    request.max_content_length = limit
    try:
        body = request.stream.read(limit)
        over = len(body) == limit and bool(request.environ["wsgi.input"].read(1))
    except RequestEntityTooLarge:
        over = True
    except Exception as e:
        # The server parses chunked framing while we read and raises its own errors (gunicorn's
        # InvalidChunkSize is not an OSError); all of them mean the client's framing is broken.
        raise UnreadableBody(f"body could not be read: {type(e).__name__}") from None
    if over:
        raise BodyTooLarge(f"body is larger than WX_MAX_BODY={limit} bytes")
    return body


def _log_push(settings: Settings, message: Message, answer: Answer | None, took: float) -> None:
    """One line per push: who, what, how it ended and how long it took; content only on request.

    The push is counted either way; the line's fields are made only when it will be written.
    """
    if answer is None:
        outcome = "lapsed"
    elif answer.body == SUCCESS.body:
        outcome = "success"
    else:
        outcome = "reply"
    metrics.PUSHES.labels(_metric_type(message), outcome).inc()
    if not logger.isEnabledFor(logging.INFO):
        return
    latency_ms = round(took * 1000, 1)
    msg_type = message.msg_type
    if isinstance(message, Event):
        msg_type = f"event:{message.event}"
    msg_id = getattr(message, "msg_id", None) or ""
    fields: dict[str, object] = {
        "account": settings.name,
        "to": message.to_user_name,
        "type": msg_type,
        "msg_id": msg_id,
        "outcome": outcome,
        "latency_ms": latency_ms,
    }
    if settings.log_content:
        fields["user"] = message.from_user_name
        fields["content"] = getattr(message, "content", "")
    logger.info(
        "push %s %s %s -> %s in %.1f ms",
        message.to_user_name,
        msg_type,
        msg_id,
        outcome,
        latency_ms,
        extra=fields,
    )


def _metric_type(message: Message) -> str:
    """The push's type as a metric label: its class's, so the set of series stays bounded.

    The wire's own MsgType or Event would do for WeChat, but in plaintext mode anyone holding a
    signed URL can post any body, and every new value would be a series kept for good.
    """
    if isinstance(message, UnknownEvent):
        return "event:unknown"
    if isinstance(message, Event):
        return f"event:{type(message).EVENT}"
    if isinstance(message, UnknownMessage):
        return "unknown"
    return type(message).MSG_TYPE


def _queued_for(deadline: float, now: float) -> float:
    """Seconds the request waited before reaching us, from nginx's ``X-Request-Start``.

    WeChat's five seconds run from its connection, not from when a worker thread got to the
    request; behind nginx (deploy/nginx.conf sets ``X-Request-Start: t=<msec>``) the time
    spent queued counts against the deadline too. Absent or implausible values count as 0.
    ``now`` is the Unix time the service goes by.
    The environ is read directly: ``request.headers`` builds a mapping and, for the usual absent
    header, raises and catches a KeyError, four times the cost.
    """
    header = request.environ.get("HTTP_X_REQUEST_START")
    if not header:
        return 0.0
    try:
        queued = now - float(header.removeprefix("t="))
    except ValueError:
        return 0.0
    return queued if 0.0 < queued < deadline else 0.0


def _lapse() -> Response:
    """Close the connection with no answer, which WeChat treats like a timeout and retries.

    Answering late is not an option (no response may leave after the deadline), and WeChat
    documents retries only for pushes it got no answer to: an error status shows the user an
    error instead (PROTOCOL.md §6). Where the server does not expose
    its socket (the test client), a bodiless 503 stands in for the closed connection.
    """
    sock = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    return Response(b"", status=503)


@bp.errorhandler(Exception)
def internal_error(error: Exception) -> ResponseReturnValue:
    """Answer "success" when our own code fails, with the traceback in the log.

    A 500 would make WeChat retry into the same fault three times and show the user an
    error; the push is lost either way, so it is answered and logged loudly instead.
    """
    if isinstance(error, HTTPException):
        return error
    with scope.serving(_account()):
        logger.exception("internal error on %s %s; answered success", request.method, request.path)
    return Response(SUCCESS.body, mimetype=SUCCESS.mimetype)


def _client_address() -> str:
    """Who sent the request: behind a trusted proxy, the address it saw.

    deploy/nginx.conf passes the client's address in ``X-Real-IP``; it is believed only from a
    peer in WX_TRUSTED_PROXIES (loopback unless set: nginx on this host, as gunicorn.conf.py
    trusts ``X-Forwarded-*``), and only when it is an address, so a client can neither pose as
    another nor write into the log line.
    """
    peer = request.remote_addr or "unknown"
    told = request.headers.get("X-Real-IP", "")
    if not told:
        return peer
    try:
        sender = ipaddress.ip_address(peer)
        client = ipaddress.ip_address(told)
    except ValueError:
        return peer
    proxies = _service(_account()).settings.trusted_proxies
    return f"{client} via {peer}" if any(sender in net for net in proxies) else peer


@bp.errorhandler(WeChatError)
def refuse(error: WeChatError) -> tuple[str, int]:
    """Answer a refused request with its status and say why in one log line."""
    with scope.serving(_account()):
        metrics.REFUSED.labels(type(error).__name__).inc()
        logger.warning(
            "refused %s %s from %s: %s %s (%s)",
            request.method,
            request.path,
            _client_address(),
            error.status,
            error.message,
            type(error).__name__,
        )
    return f"{error.status} {type(error).__name__}: {error.message}\n", error.status
