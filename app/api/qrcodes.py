"""Parametric QR codes (带参数二维码) of an Official Account, API.md §8.

A user who scans one gets a ``subscribe`` event (first follow) or a ``SCAN`` event carrying the
scene, which the handlers read as ``message.scene``. Temporary codes live up to 30 days and
take a 32-bit scene_id or a scene_str; permanent ones take a scene_id up to 100 000 or a
scene_str, at most 100 000 codes per account.
"""

from __future__ import annotations

from dataclasses import dataclass

from .call import Answer, Call, Caller, endpoint
from .errors import APIUnavailable

CREATE_PATH = "/cgi-bin/qrcode/create"
SHOW_PATH = "/cgi-bin/showqrcode"
#: 30 days, the longest a temporary code lives; WeChat's own default is 60 s.
MAX_EXPIRE = 2_592_000
MAX_TEMPORARY_ID = 2**32 - 1
MAX_PERMANENT_ID = 100_000
MAX_SCENE_STR = 64


@dataclass(frozen=True, slots=True)
class QRCode:
    """A created QR code."""

    #: Exchanged for the image at :attr:`image_url`; events carry it as ``Ticket``.
    ticket: str
    #: The text the QR code encodes, to render it yourself.
    url: str
    #: Seconds it lives; None for a permanent code.
    expire_seconds: int | None
    #: The image (``showqrcode``), openable without a token.
    image_url: str


def scene_of(scene: int | str, *, permanent: bool) -> tuple[str, dict[str, int | str]]:
    """The ``action_name`` and the ``scene`` object for ``scene``.

    :raises ValueError: a scene outside the range its kind takes.
    """
    kind = "QR_LIMIT_" if permanent else "QR_"
    if isinstance(scene, str):
        if not 1 <= len(scene) <= MAX_SCENE_STR:
            raise ValueError(f"a scene string takes 1 to {MAX_SCENE_STR} characters")
        return kind + "STR_SCENE", {"scene_str": scene}
    if isinstance(scene, bool) or not isinstance(scene, int):
        raise TypeError(f"scene must be an int or a str, not {type(scene).__name__}")
    highest = MAX_PERMANENT_ID if permanent else MAX_TEMPORARY_ID
    if not 1 <= scene <= highest:
        which = "a permanent" if permanent else "a temporary"
        raise ValueError(f"{which} QR code's scene_id is 1 to {highest} (got {scene})")
    return kind + "SCENE", {"scene_id": scene}


def _image(answer: Answer) -> bytes:
    if answer.json:
        raise APIUnavailable(f"{SHOW_PATH} answered JSON, not an image")
    return answer.content


class QRCodes(Caller):
    def _created(self, answer: Answer) -> QRCode:
        ticket, expire = answer.json.get("ticket"), answer.json.get("expire_seconds")
        if not isinstance(ticket, str) or not ticket:
            raise APIUnavailable(f"{CREATE_PATH} answered without a ticket")
        return QRCode(
            ticket=ticket,
            url=str(answer.json.get("url", "")),
            expire_seconds=None if expire is None else int(expire),
            image_url=self.qrcode_image_url(ticket),
        )

    @endpoint
    def create_qrcode(
        self, scene: int | str, *, permanent: bool = False, expire_seconds: int | None = None
    ) -> Call[QRCode]:
        """Create a QR code for ``scene`` (an int is a scene_id, a str a scene_str).

        :param permanent: a permanent code (scene_id 1 to 100 000), instead of a temporary one.
        :param expire_seconds: a temporary code's life, 1 to 2 592 000 (30 days, the default).
        :raises ValueError: a scene out of range, a bad expiry, an expiry for a permanent code.
        """
        self._official_only("parametric QR codes")
        action_name, scene_object = scene_of(scene, permanent=permanent)
        body: dict[str, object] = {}
        if permanent:
            if expire_seconds is not None:
                raise ValueError("a permanent QR code does not expire: leave expire_seconds out")
        else:
            expire = MAX_EXPIRE if expire_seconds is None else expire_seconds
            if not 1 <= expire <= MAX_EXPIRE:
                raise ValueError(f"expire_seconds is 1 to {MAX_EXPIRE} (got {expire})")
            body["expire_seconds"] = expire
        body |= {"action_name": action_name, "action_info": {"scene": scene_object}}
        # A second create only makes another ticket for the same scene: safe to retry.
        return Call("POST", CREATE_PATH, self._created, body=body, idempotent=True)

    @endpoint
    def qrcode_image(self, ticket: str) -> Call[bytes]:
        """The QR code's image as ``showqrcode`` serves it (a JPEG).

        :raises APIUnavailable: ``HTTP 404`` for an unknown or expired ticket.
        """
        if not ticket:
            raise ValueError("ticket is empty")
        return Call(
            "GET",
            SHOW_PATH,
            _image,
            params={"ticket": ticket},
            token=False,
            idempotent=True,
            binary=True,
            host="mp",
        )
