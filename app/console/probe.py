"""``flask wx check``'s probe: the console's handshake against a running server, explained.

WeChat's console only says "token 验证失败" (token verification failed) whatever went wrong.
The probe sends the same signed GET and turns each way it can fail into symptom, cause and fix.
"""

from __future__ import annotations

import email.utils
import secrets
import ssl
import time
import urllib.parse
from dataclasses import dataclass

from ..wechat.signature import sign
from .simulator import connect

#: WeChat gives up on the handshake after 5 seconds as it does on pushes.
TIMEOUT = 5.0
#: Clock difference worth a warning even when the server still accepts the signature.
SKEW_WARNING = 60


@dataclass(frozen=True)
class Finding:
    """One thing the probe found: ``ok`` findings confirm, the others explain a failure."""

    ok: bool
    symptom: str
    cause: str = ""
    fix: str = ""


def probe(url: str, token: str, *, clock_offset: float = 0.0) -> list[Finding]:
    """Send the console's handshake to ``url`` and explain the answer.

    :param clock_offset: seconds added to this machine's clock when signing (tests use it to
        play a WeChat whose clock differs from the server's).
    """
    findings = _url_findings(url)
    timestamp = str(int(time.time() + clock_offset))
    nonce = str(secrets.randbelow(10**9))
    echostr = secrets.token_hex(8)
    query = {
        "signature": sign(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": echostr,
    }
    connection, path = connect(url, TIMEOUT)
    started = time.monotonic()
    try:
        connection.request("GET", path + "?" + urllib.parse.urlencode(query))
        response = connection.getresponse()
        status, body = response.status, response.read(4096)
        date = response.getheader("Date")
    except TimeoutError:
        return [*findings, _TIMED_OUT]
    except ssl.SSLCertVerificationError as e:
        return [*findings, _untrusted_certificate(e)]
    except ssl.SSLError as e:
        return [*findings, _tls_failed(e)]
    except OSError as e:
        return [*findings, _unreachable(url, e)]
    finally:
        connection.close()
    took = time.monotonic() - started
    findings.append(_answer_finding(status, body, echostr, path))
    findings.extend(_clock_findings(date, clock_offset))
    if took > TIMEOUT - 1:
        findings.append(Finding(False, f"the answer took {took:.1f} s", *_SLOW))
    return findings


_TIMED_OUT = Finding(
    False,
    f"no answer within {TIMEOUT:.0f} s",
    "WeChat gives up after 5 s; something accepts the connection but does not answer",
    "check that gunicorn runs and nginx's proxy_pass points at it",
)
_SLOW = (
    "WeChat gives up after 5 s",
    "look at the server's load and at what sits between it and the internet",
)


def _url_findings(url: str) -> list[Finding]:
    parts = urllib.parse.urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port not in (None, default_port) and parts.hostname not in ("127.0.0.1", "localhost"):
        return [
            Finding(
                False,
                f"the URL uses port {parts.port}",
                "the console accepts only http on port 80 and https on port 443",
                "put nginx on 80/443 in front (deploy/nginx.conf) and paste that URL",
            )
        ]
    return []


def _untrusted_certificate(error: ssl.SSLCertVerificationError) -> Finding:
    return Finding(
        False,
        f"the https certificate is not trusted ({error.verify_message})",
        "WeChat, like this check, accepts only a valid certificate from a public CA for this"
        " exact domain: not self-signed, not expired, the whole chain served",
        "get one from Let's Encrypt (certbot --nginx) or your cloud's free certificate, and"
        " serve fullchain.pem in nginx's ssl_certificate",
    )


def _tls_failed(error: ssl.SSLError) -> Finding:
    return Finding(
        False,
        f"the https handshake failed ({error.reason or error})",
        "the port does not speak TLS (an http server on it) or speaks only old protocols",
        "use an http:// URL for that port, or let nginx serve TLS on 443 (deploy/nginx.conf)",
    )


def _unreachable(url: str, error: OSError) -> Finding:
    return Finding(
        False,
        f"cannot connect to {url} ({type(error).__name__}: {error})",
        "the server is not running, or listens on another host or port",
        "start it with `make run` (or gunicorn wsgi:app); give --url, or PORT, where it listens",
    )


def _answer_finding(status: int, body: bytes, echostr: str, path: str) -> Finding:
    text = body.decode("utf-8", "replace")
    if status == 200 and body == echostr.encode():
        return Finding(True, "handshake answered with the exact echostr")
    if status == 404:
        return Finding(
            False,
            f"404 Not Found for {path or '/'}",
            "the URL's path is not the service's WX_PATH",
            "paste the URL ending in WX_PATH into the console (see the URL line above)",
        )
    if status == 403 and "SignatureError" in text:
        return Finding(
            False,
            "403: the signature does not match",
            "the server's WX_TOKEN differs from the Token this check signs with",
            "the console's Token, WX_TOKEN in the server's .env and this check must be equal",
        )
    if status == 403 and "StaleTimestamp" in text:
        return Finding(
            False,
            "403: the timestamp is outside the server's window",
            "the server's clock and WeChat's disagree",
            "sync the server clock (timedatectl set-ntp true / chrony)",
        )
    if status == 400 and "plain HTTP request was sent to HTTPS port" in text:
        return Finding(
            False,
            "400: an http request reached an https port",
            "the URL says http:// but the server speaks TLS on that port",
            "use https:// in the URL (and in the console)",
        )
    if status == 200:
        return Finding(
            False,
            f"200 but the body is not the echostr ({text[:60]!r})",
            "something else answers this URL: another app, a proxy page, or a CDN",
            "make the URL reach this service; the body must be exactly the echostr",
        )
    return Finding(
        False,
        f"HTTP {status}: {text[:100]!r}",
        "the server refused the handshake",
        "read the server's log line for this request",
    )


def _clock_findings(date: str | None, clock_offset: float) -> list[Finding]:
    if not date:
        return []
    try:
        server_time = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return []
    skew = server_time - (time.time() + clock_offset)
    if abs(skew) <= SKEW_WARNING:
        return []
    return [
        Finding(
            False,
            f"the server's clock is {abs(skew):.0f} s {'ahead' if skew > 0 else 'behind'}",
            "pushes signed by WeChat are refused once the skew passes WX_TIMESTAMP_TOLERANCE",
            "sync the server clock (timedatectl set-ntp true / chrony)",
        )
    ]
