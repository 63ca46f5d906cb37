"""Official Account user info (用户基本信息): OpenID to profile, API.md §7.

Since 2021-12-27 WeChat gives no nickname or avatar; what is left is whether the user follows,
since when and how (``subscribe_scene``, the QR scene), the ``unionid`` when the account is
bound to an Open Platform account, and the account's own remark and tags.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .call import Answer, Call, Caller, endpoint

INFO_PATH = "/cgi-bin/user/info"
BATCH_PATH = "/cgi-bin/user/info/batchget"
#: Users per batchget call.
MAX_BATCH = 100
LANGUAGES = ("zh_CN", "zh_TW", "en")


@dataclass(frozen=True, slots=True)
class UserInfo:
    """One user as ``user/info`` describes them; attributes are the wire fields."""

    openid: str
    #: Whether the user follows the account; if not, little else is filled in.
    subscribe: bool
    #: The user's id across the Open Platform account's apps, if the account is bound to one.
    unionid: str | None
    #: Unix time of the (last) follow.
    subscribe_time: int | None
    #: How the user followed: ``ADD_SCENE_QR_CODE``, ``ADD_SCENE_SEARCH``, ...
    subscribe_scene: str | None
    #: The scene of the QR code the user followed through (0 / "" when none).
    qr_scene: int | None
    qr_scene_str: str | None
    #: The account's remark for the user.
    remark: str
    tagid_list: tuple[int, ...]
    #: Every field as answered.
    raw: Mapping[str, Any]

    @classmethod
    def from_wire(cls, fields: Mapping[str, Any]) -> UserInfo:
        def optional_int(name: str) -> int | None:
            value = fields.get(name)
            return None if value is None else int(value)

        return cls(
            openid=str(fields.get("openid", "")),
            subscribe=bool(fields.get("subscribe", 0)),
            unionid=fields.get("unionid") or None,
            subscribe_time=optional_int("subscribe_time"),
            subscribe_scene=fields.get("subscribe_scene") or None,
            qr_scene=optional_int("qr_scene"),
            qr_scene_str=fields.get("qr_scene_str"),
            remark=str(fields.get("remark", "")),
            tagid_list=tuple(int(tag) for tag in fields.get("tagid_list", ())),
            raw=dict(fields),
        )


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, not {lang!r}")


def _users(answer: Answer) -> list[UserInfo]:
    return [UserInfo.from_wire(fields) for fields in answer.json.get("user_info_list", ())]


class Users(Caller):
    @endpoint
    def user_info(self, openid: str, lang: str = "zh_CN") -> Call[UserInfo]:
        """The profile of one user of this account.

        :raises InvalidOpenID: 40003, not a user of this account.
        """
        self._official_only("user profiles")
        _check_lang(lang)
        if not openid:
            raise ValueError("openid is empty")
        return Call(
            "GET",
            INFO_PATH,
            lambda answer: UserInfo.from_wire(answer.json),
            params={"openid": openid, "lang": lang},
            idempotent=True,
        )

    @endpoint
    def users_info(self, openids: Sequence[str], lang: str = "zh_CN") -> Call[list[UserInfo]]:
        """The profiles of up to 100 users in one call, in the order given."""
        self._official_only("user profiles")
        _check_lang(lang)
        if not 1 <= len(openids) <= MAX_BATCH:
            raise ValueError(f"users_info takes 1 to {MAX_BATCH} OpenIDs (got {len(openids)})")
        if not all(openids):
            raise ValueError("an openid is empty")
        body = {"user_list": [{"openid": openid, "lang": lang} for openid in openids]}
        # A read: repeating it is harmless, though it is a POST.
        return Call("POST", BATCH_PATH, _users, body=body, idempotent=True)
