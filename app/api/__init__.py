"""WeChat's server API for handlers and the service: one object per account, sync or async.

::

    from app.api import WeChatAPI, ReplyWindowPassed

    api = WeChatAPI(appid, appsecret, store)
    media_id = api.upload_media("image", png_bytes)
    try:
        api.send_image(openid, media_id)
    except ReplyWindowPassed:
        ...  # the user has not written for 48 hours

Modules: :mod:`.client` (the two clients, tokens and retries), :mod:`.call` (a call as data),
:mod:`.transport` (HTTP), :mod:`.token` (the shared access_token), :mod:`.errors`, and one
module per family of endpoints: :mod:`.messages`, :mod:`.templates`, :mod:`.media`,
:mod:`.users`, :mod:`.qrcodes`, :mod:`.menus`.
"""

from .client import AsyncWeChatAPI as AsyncWeChatAPI
from .client import WeChatAPI as WeChatAPI
from .errors import TOKEN_ERRORS as TOKEN_ERRORS
from .errors import APIError as APIError
from .errors import APIUnavailable as APIUnavailable
from .errors import ArgumentInvalid as ArgumentInvalid
from .errors import DailyQuotaReached as DailyQuotaReached
from .errors import ErrorCode as ErrorCode
from .errors import InvalidMediaID as InvalidMediaID
from .errors import InvalidOpenID as InvalidOpenID
from .errors import InvalidTemplateID as InvalidTemplateID
from .errors import IPNotWhitelisted as IPNotWhitelisted
from .errors import MinuteQuotaReached as MinuteQuotaReached
from .errors import NoMenu as NoMenu
from .errors import NotFollowing as NotFollowing
from .errors import QuotaReached as QuotaReached
from .errors import ReplyWindowPassed as ReplyWindowPassed
from .errors import SubscriptionRefused as SubscriptionRefused
from .errors import SystemBusy as SystemBusy
from .errors import TokenRefreshTimeout as TokenRefreshTimeout
from .errors import TooManyReplies as TooManyReplies
from .errors import Unauthorized as Unauthorized
from .errors import WeChatAPIError as WeChatAPIError
from .qrcodes import QRCode as QRCode
from .users import UserInfo as UserInfo
