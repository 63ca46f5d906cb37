"""Temporary media: multipart uploads from bytes or a path, the media_id back, byte-exact
downloads, a video through its URL, and an error answered as JSON raised as a typed error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app import ImageReply
from app.api import APIUnavailable, InvalidMediaID
from tests.apikit import (  # noqa: F401 - fixtures
    OPENID,
    Caller,
    call_fixture,
    fake_fixture,
)
from tests.fakewechat import MEDIA_GET_PATH, MEDIA_UPLOAD_PATH, FakeWeChat

#: Every byte value, CR and LF included, after each format's magic number.
TAIL = bytes(range(256)) * 8 + b"\r\n--boundary\r\n"
JPEG = b"\xff\xd8\xff\xe0" + TAIL
PNG = b"\x89PNG\r\n\x1a\n" + TAIL
GIF = b"GIF89a" + TAIL
AMR = b"#!AMR\n" + TAIL
MP3 = b"ID3\x03" + TAIL
MP4 = b"\x00\x00\x00\x18ftypmp42" + TAIL


@pytest.mark.parametrize(
    ("kind", "content", "filename", "content_type", "id_field"),
    [
        ("image", JPEG, "image.jpg", "image/jpeg", "media_id"),
        ("image", PNG, "image.png", "image/png", "media_id"),
        ("image", GIF, "image.gif", "image/gif", "media_id"),
        ("voice", AMR, "voice.amr", "audio/amr", "media_id"),
        ("voice", MP3, "voice.mp3", "audio/mpeg", "media_id"),
        ("video", MP4, "video.mp4", "video/mp4", "media_id"),
        ("thumb", JPEG, "thumb.jpg", "image/jpeg", "thumb_media_id"),
    ],
)
def test_upload_from_bytes(
    call: Caller,
    fake: FakeWeChat,
    kind: str,
    content: bytes,
    filename: str,
    content_type: str,
    id_field: str,
) -> None:
    media_id = call("upload_media", kind, content)
    [request] = fake.calls(MEDIA_UPLOAD_PATH)
    assert request.query["type"] == kind
    assert request.upload is not None
    assert (request.upload.name, request.upload.filename, request.upload.content_type) == (
        "media",
        filename,
        content_type,
    )
    assert request.upload.content == content
    [stored] = fake.uploads
    assert media_id == stored.media_id


def test_upload_from_a_path_keeps_the_file_name(
    call: Caller, fake: FakeWeChat, tmp_path: Path
) -> None:
    path = tmp_path / "猫.png"
    path.write_bytes(PNG)
    media_id = call("upload_media", "image", path)
    call("upload_media", "image", str(path), filename="cat.png")
    assert [u.filename for u in fake.uploads] == ["猫.png", "cat.png"]
    assert fake.uploads[0].media_id == media_id


@pytest.mark.parametrize(
    ("filename", "sent"),
    [("photo", "photo.png"), ("photo.JPG", "photo.png"), ("a.b.jpeg", "a.b.png")],
)
def test_the_file_name_gets_the_extension_of_the_format(
    call: Caller, fake: FakeWeChat, filename: str, sent: str
) -> None:
    call("upload_media", "image", PNG, filename=filename)
    assert fake.uploads[0].filename == sent


def test_a_handler_answers_with_what_it_uploaded(call: Caller, fake: FakeWeChat) -> None:
    reply = ImageReply(call("upload_media", "image", JPEG))
    assert reply.media_id == fake.uploads[0].media_id


def test_an_upload_whose_answer_was_lost_is_retried(call: Caller, fake: FakeWeChat) -> None:
    call.options["retries"] = 1
    fake.drop_next(MEDIA_UPLOAD_PATH, processed=True)
    media_id = call("upload_media", "image", JPEG)
    assert len(fake.uploads) == 2  # the first one only expires unused
    assert media_id == fake.uploads[1].media_id


@pytest.mark.parametrize(
    ("kind", "content", "filename", "complaint"),
    [
        ("sticker", JPEG, None, "media type must be one of image, voice, video, thumb"),
        ("image", b"", None, "the media file is empty"),
        ("image", JPEG[:4] + bytes(2 << 20), None, "image media take at most 2097152 bytes"),
        ("thumb", JPEG[:4] + bytes(64 << 10), None, "thumb media take at most 65536 bytes"),
        ("voice", AMR[:6] + bytes(2 << 20), None, "voice media take at most 2097152 bytes"),
        ("video", MP4[:12] + bytes(10 << 20), None, "video media take at most 10485760 bytes"),
        ("thumb", PNG, None, "thumb media are jpeg, not png"),
        ("voice", JPEG, None, "voice media are amr, mp3, not jpeg"),
        ("image", b"plain text", None, "cannot tell the format of the image"),
        ("image", b"plain text", "notes.txt", "cannot tell the format of the image"),
    ],
    ids=[
        "kind",
        "empty",
        "image-size",
        "thumb-size",
        "voice-size",
        "video-size",
        "thumb-png",
        "voice-jpeg",
        "unknown",
        "unknown-name",
    ],
)
def test_uploads_are_checked_before_sending(
    call: Caller,
    fake: FakeWeChat,
    kind: str,
    content: bytes,
    filename: str | None,
    complaint: str,
) -> None:
    with pytest.raises(ValueError, match=complaint):
        call("upload_media", kind, content, filename=filename)
    assert fake.requests == []


def test_a_file_name_tells_the_format_the_bytes_do_not(call: Caller, fake: FakeWeChat) -> None:
    call("upload_media", "voice", b"\x00\x01raw amr frames", filename="clip.AMR")
    assert fake.uploads[0].content_type == "audio/amr"


def test_a_missing_file_is_an_os_error(call: Caller, fake: FakeWeChat, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        call("upload_media", "image", os.fspath(tmp_path / "absent.jpg"))
    assert fake.requests == []


def test_a_mini_program_uploads_images_only(fake: FakeWeChat) -> None:
    call = Caller("sync", base_url=fake.url, miniprogram=True)
    call("upload_media", "image", JPEG)
    with pytest.raises(ValueError, match="a Mini Program uploads images only, not 'voice'"):
        call("upload_media", "voice", AMR)
    call.close()
    assert len(fake.uploads) == 1


def test_refused_uploads_are_typed(call: Caller, fake: FakeWeChat) -> None:
    fake.fail_next(MEDIA_UPLOAD_PATH, 45009, errmsg="reach max api daily quota limit")
    with pytest.raises(Exception, match="45009 \\(DAILY_QUOTA\\)"):
        call("upload_media", "image", JPEG)


# -- downloads ----------------------------------------------------------------------------


def test_download_returns_the_exact_bytes(call: Caller, fake: FakeWeChat) -> None:
    media_id = fake.add_media(JPEG)
    assert call("download_media", media_id) == JPEG
    [request] = fake.calls(MEDIA_GET_PATH)
    assert request.query["media_id"] == media_id


def test_an_upload_comes_back_byte_for_byte(call: Caller) -> None:
    media_id = call("upload_media", "voice", MP3)
    assert call("download_media", media_id) == MP3


def test_a_video_is_fetched_from_its_url(call: Caller, fake: FakeWeChat) -> None:
    media_id = fake.add_media(MP4, type="video", content_type="video/mp4")
    assert call("download_media", media_id) == MP4
    video = [r for r in fake.requests if r.path.startswith("/fake-cdn/video/")]
    assert len(video) == 1 and "access_token" not in video[0].query


def test_an_unknown_media_id_is_a_typed_error(call: Caller, fake: FakeWeChat) -> None:
    """WeChat answers the error as JSON (text/plain) where a file was expected."""
    with pytest.raises(InvalidMediaID) as info:
        call("download_media", "MEDIA_gone")
    assert (info.value.errcode, info.value.errmsg, info.value.path) == (
        40007,
        "invalid media_id",
        MEDIA_GET_PATH,
    )


def test_an_expired_token_on_download_is_replaced(call: Caller, fake: FakeWeChat) -> None:
    media_id = fake.add_media(PNG, content_type="image/png")
    call("access_token")
    fake.expire_tokens()
    assert call("download_media", media_id) == PNG
    assert [r.errcode for r in fake.calls(MEDIA_GET_PATH)] == [42001, 0]


def test_an_empty_media_id_is_refused(call: Caller, fake: FakeWeChat) -> None:
    with pytest.raises(ValueError, match="media_id is empty"):
        call("download_media", "")
    assert fake.requests == []


def test_json_without_a_file_is_api_unavailable(call: Caller, fake: FakeWeChat) -> None:
    fake.fail_next(MEDIA_GET_PATH, 0, errmsg="ok")
    with pytest.raises(APIUnavailable, match="expected a file, got a JSON answer"):
        call("download_media", "M")
