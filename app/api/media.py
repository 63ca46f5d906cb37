"""Temporary media (临时素材): upload for a media_id, download by media_id, API.md §6.

A media_id lives 3 days and can be used any number of times, so a handler may answer with
``ImageReply(api.upload_media("image", data))``. The format is read from the bytes (or the
file name) and checked against what WeChat takes for the type, with the size, before sending:
WeChat's own answers (40004, 40005, 45001, ...) do not say which rule was broken.
"""

from __future__ import annotations

import os
from pathlib import Path

from .call import Answer, Call, Caller, Upload, endpoint
from .errors import APIUnavailable

UPLOAD_PATH = "/cgi-bin/media/upload"
GET_PATH = "/cgi-bin/media/get"

#: Bytes, or the path of a file.
Source = bytes | str | os.PathLike[str]

#: type -> (most bytes, formats taken). Images: the page's 10 MB is contradicted by its own
#: summary and older copies (2 MB), so 2 MB.
LIMITS = {
    "image": (2 << 20, ("jpeg", "png", "gif")),
    "voice": (2 << 20, ("amr", "mp3")),
    "video": (10 << 20, ("mp4",)),
    "thumb": (64 << 10, ("jpeg",)),
}
#: format -> (Content-Type, file name extension).
FORMATS = {
    "jpeg": ("image/jpeg", ".jpg"),
    "png": ("image/png", ".png"),
    "gif": ("image/gif", ".gif"),
    "amr": ("audio/amr", ".amr"),
    "mp3": ("audio/mpeg", ".mp3"),
    "mp4": ("video/mp4", ".mp4"),
}
_EXTENSIONS = {ext: name for name, (_, ext) in FORMATS.items()} | {".jpeg": "jpeg"}


def sniff(content: bytes) -> str | None:
    """The format of ``content`` by its first bytes, or None."""
    if content.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if content.startswith(b"#!AMR"):
        return "amr"
    if content.startswith(b"ID3") or (
        len(content) > 1 and content[0] == 0xFF and content[1] >= 0xE0
    ):
        return "mp3"
    if content[4:8] == b"ftyp":
        return "mp4"
    return None


def prepare_upload(kind: str, media: Source, filename: str | None) -> Upload:
    """The ``media`` file part for ``type=kind``, checked.

    :raises ValueError: an unknown type, a format the type does not take or that cannot be
        told, an empty or too large file.
    :raises OSError: the file cannot be read.
    """
    if kind not in LIMITS:
        raise ValueError(f"media type must be one of {', '.join(LIMITS)}, not {kind!r}")
    if isinstance(media, bytes):
        content = media
    else:
        path = Path(media)
        content = path.read_bytes()
        filename = filename or path.name
    limit, formats = LIMITS[kind]
    if not content:
        raise ValueError("the media file is empty")
    if len(content) > limit:
        raise ValueError(f"{kind} media take at most {limit} bytes (got {len(content)})")
    found = sniff(content) or _EXTENSIONS.get(Path(filename or "").suffix.lower())
    if found is None:
        raise ValueError(f"cannot tell the format of the {kind}; {kind} media are {formats}")
    if found not in formats:
        raise ValueError(f"{kind} media are {', '.join(formats)}, not {found}")
    content_type, extension = FORMATS[found]
    # WeChat reads the format from the file name too (40005): make the extension agree.
    name = Path(filename or kind)
    if _EXTENSIONS.get(name.suffix.lower()) != found:
        name = name.with_name(name.stem + extension)
    return Upload("media", name.name, content, content_type)


def _uploaded(kind: str, answer: Answer) -> str:
    # A thumb's id comes back as thumb_media_id (API.md §6).
    media_id = answer.json.get("thumb_media_id" if kind == "thumb" else "media_id")
    media_id = media_id or answer.json.get("media_id")
    if not isinstance(media_id, str) or not media_id:
        raise APIUnavailable(f"{UPLOAD_PATH} answered without a media_id")
    return media_id


def _file(answer: Answer) -> bytes:
    if answer.json:
        raise APIUnavailable(f"expected a file, got a JSON answer with {sorted(answer.json)}")
    return answer.content


def _downloaded(answer: Answer) -> bytes | Call[bytes]:
    video_url = answer.json.get("video_url")
    if isinstance(video_url, str) and video_url:
        # A video answers with where to fetch it; that URL takes no token.
        return Call("GET", video_url, _file, token=False, idempotent=True, binary=True)
    return _file(answer)


class Media(Caller):
    @endpoint
    def upload_media(self, kind: str, media: Source, *, filename: str | None = None) -> Call[str]:
        """Upload temporary media and return its ``media_id`` (valid 3 days).

        :param kind: ``image`` (JPEG, PNG, GIF ≤ 2 MB), ``voice`` (AMR, MP3 ≤ 2 MB, ≤ 60 s),
            ``video`` (MP4 ≤ 10 MB) or ``thumb`` (JPEG ≤ 64 KB); a Mini Program takes images.
        :param media: the bytes, or a file's path (read here, before sending).
        :param filename: the name WeChat is given; by default the file's, or ``<kind>.<ext>``;
            its extension is made to match the format.
        :raises ValueError: see :func:`prepare_upload`.
        """
        if self.miniprogram and kind != "image":
            raise ValueError(f"a Mini Program uploads images only, not {kind!r}")
        upload = prepare_upload(kind, media, filename)
        # Uploading twice only leaves an unused media_id, which expires: safe to retry.
        return Call(
            "POST",
            UPLOAD_PATH,
            lambda answer: _uploaded(kind, answer),
            params={"type": kind},
            upload=upload,
            idempotent=True,
        )

    @endpoint
    def download_media(self, media_id: str) -> Call[bytes]:
        """The bytes of a temporary media (what a user sent: ``message.media_id``).

        A video is fetched from the ``video_url`` WeChat answers with.

        :raises InvalidMediaID: 40007, unknown or expired.
        """
        if not media_id:
            raise ValueError("media_id is empty")
        return Call(
            "GET",
            GET_PATH,
            _downloaded,
            params={"media_id": media_id},
            idempotent=True,
            binary=True,
        )
