"""WeChat's signatures and the timestamp window.

WeChat signs a request with ``sha1(concat(sorted(parts)))`` in lowercase hex: the parts are the
token, timestamp and nonce for ``signature`` (PROTOCOL.md §2), plus the ``Encrypt`` payload for
``msg_signature`` (§3). Every comparison of a received signature goes through :func:`verify`,
which uses :func:`hmac.compare_digest`, so no other module compares secrets by hand.
"""

from __future__ import annotations

import hashlib
import hmac

from .errors import SignatureError, StaleTimestamp

#: Seconds a signed timestamp may differ from the server clock, either way.
DEFAULT_TOLERANCE = 300


def sign(*parts: str) -> str:
    """Return WeChat's signature of ``parts``: sha1 over their sorted concatenation.

    Sorting is plain string order, which for these ASCII values is byte order, as WeChat does.
    """
    joined = "".join(sorted(parts))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()


def verify(received: str, *parts: str, what: str = "signature") -> None:
    """Check that ``received`` is the signature of ``parts``.

    :param received: the signature from the query string.
    :param what: the parameter's name, for the error message.
    :raises SignatureError: when it does not match.
    """
    expected = sign(*parts)
    if not hmac.compare_digest(expected.encode("ascii"), received.lower().encode("utf-8")):
        raise SignatureError(
            f"{what} does not match; check that WX_TOKEN equals the console's Token"
        )


def check_timestamp(timestamp: str, *, now: int, tolerance: int = DEFAULT_TOLERANCE) -> int:
    """Parse a signed timestamp and refuse it when it is outside the window.

    Called after the signature has been verified, so the timestamp is WeChat's own. A window in
    both directions refuses replays of old signed URLs and URLs signed ahead of time.

    :param now: the server's Unix time, passed in so that tests and replays can freeze it.
    :param tolerance: seconds allowed either way; 0 turns the check off.
    :return: the timestamp as an int.
    :raises StaleTimestamp: when it is not an integer or outside the window.
    """
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise StaleTimestamp(f"timestamp is not a Unix time ({len(timestamp)} characters)")
    value = int(timestamp)
    if tolerance:
        age = now - value
        if abs(age) > tolerance:
            direction = "old" if age > 0 else "ahead of server time"
            raise StaleTimestamp(
                f"timestamp {value} is {abs(age)} s {direction}; limit {tolerance} s"
                " (replay, or a server clock that needs NTP)"
            )
    return value
