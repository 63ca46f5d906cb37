"""Settings: defaults, the environment winning over .env, and one message per invalid value."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
from dotenv import dotenv_values

from config import DEMO_VALUES, AccountType, ConfigError, Settings, demo_warning, load_settings

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx1a2b3c4d5e6f7a8b"


def load(**env: str) -> Settings:
    return load_settings({"WX_TOKEN": "weixinpush2026", **env}, dotenv=False)


def test_defaults() -> None:
    settings = load()
    assert settings == Settings(token="weixinpush2026")
    assert settings.path == "/wx"
    assert settings.timestamp_tolerance == 300
    assert settings.max_body == 65536
    assert settings.account_type is AccountType.OFFICIAL


def test_every_setting_is_read() -> None:
    settings = load(
        WX_APPID=APPID,
        WX_AES_KEY=AES_KEY,
        WX_APPSECRET="s3cr3t",
        WX_PATH="/wechat/push",
        WX_HANDLERS="myhandlers:router",
        WX_ACCOUNT_TYPE="MiniProgram",
        WX_REQUIRE_ENCRYPTION="yes",
        WX_TIMESTAMP_TOLERANCE="0",
        WX_MAX_BODY="1024",
        WX_TRUSTED_PROXIES="127.0.0.1, 172.16.0.0/12,fd00::/8",
    )
    assert settings == Settings(
        token="weixinpush2026",
        appid=APPID,
        aes_key=AES_KEY,
        appsecret="s3cr3t",
        path="/wechat/push",
        handlers="myhandlers:router",
        account_type=AccountType.MINIPROGRAM,
        require_encryption=True,
        timestamp_tolerance=0,
        max_body=1024,
        trusted_proxies=(
            ipaddress.ip_network("127.0.0.1/32"),
            ipaddress.ip_network("172.16.0.0/12"),
            ipaddress.ip_network("fd00::/8"),
        ),
    )


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / "custom.env"
    dotenv.write_text("WX_TOKEN=fromfile\nWX_PATH=/fromfile\n")
    settings = load_settings({"WX_DOTENV": str(dotenv), "WX_PATH": "/fromenv"})
    assert settings.token == "fromfile"
    assert settings.path == "/fromenv"


def test_missing_dotenv_file_is_fine(tmp_path: Path) -> None:
    settings = load_settings({"WX_DOTENV": str(tmp_path / "absent"), "WX_TOKEN": "abc"})
    assert settings.token == "abc"


@pytest.mark.parametrize(
    ("env", "names", "says"),
    [
        ({"WX_TOKEN": ""}, "WX_TOKEN", "is not set"),
        ({"WX_TOKEN": "ab"}, "WX_TOKEN", "3-32 letters and digits (got 2 characters)"),
        ({"WX_TOKEN": "a" * 33}, "WX_TOKEN", "(got 33 characters)"),
        ({"WX_TOKEN": "has space"}, "WX_TOKEN", "some of them neither"),
        ({"WX_APPID": "wx123"}, "WX_APPID", "16 lowercase hex digits"),
        ({"WX_AES_KEY": AES_KEY[:42], "WX_APPID": APPID}, "WX_AES_KEY", "got 42 characters"),
        ({"WX_AES_KEY": AES_KEY[:42] + "+", "WX_APPID": APPID}, "WX_AES_KEY", "43 letters"),
        ({"WX_AES_KEY": AES_KEY}, "WX_APPID", "required when WX_AES_KEY is set"),
        ({"WX_PATH": "wx"}, "WX_PATH", "must start with '/'"),
        ({"WX_PATH": "/wx/"}, "WX_PATH", "not end with one"),
        ({"WX_HANDLERS": "my handlers"}, "WX_HANDLERS", "'module' or 'module:attribute'"),
        ({"WX_ACCOUNT_TYPE": "service"}, "WX_ACCOUNT_TYPE", "official (公众号) or miniprogram"),
        ({"WX_REQUIRE_ENCRYPTION": "maybe"}, "WX_REQUIRE_ENCRYPTION", "use true or false"),
        ({"WX_REQUIRE_ENCRYPTION": "1"}, "WX_REQUIRE_ENCRYPTION", "WX_AES_KEY is not set"),
        ({"WX_TIMESTAMP_TOLERANCE": "-1"}, "WX_TIMESTAMP_TOLERANCE", "whole number"),
        ({"WX_MAX_BODY": "0"}, "WX_MAX_BODY", "more than 0"),
        ({"WX_MAX_BODY": "64k"}, "WX_MAX_BODY", "whole number"),
        ({"WX_TRUSTED_PROXIES": "nginx"}, "WX_TRUSTED_PROXIES", "addresses or networks"),
        ({"WX_TRUSTED_PROXIES": "10.0.0.0/8,"}, "WX_TRUSTED_PROXIES", "separated by commas"),
    ],
)
def test_invalid_setting_names_itself_and_the_fix(
    env: dict[str, str], names: str, says: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(**env)
    assert names in info.value.message
    assert says in info.value.message


def test_secret_values_are_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        load(WX_AES_KEY="x" * 42 + "!", WX_APPID=APPID)
    assert "x" * 10 not in info.value.message


ROOT = Path(__file__).resolve().parent.parent


def _settings_read() -> set[str]:
    return set(re.findall(r'"(WX_[A-Z_]+)"', (ROOT / "config.py").read_text()))


def test_env_example_documents_every_setting_and_loads() -> None:
    read = _settings_read() - {"WX_DOTENV"}
    documented = set(re.findall(r"^(WX_[A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read == documented
    load_settings({"WX_DOTENV": str(ROOT / ".env.example")})


def test_readme_settings_table_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(WX_[A-Z_]+)` \|", section, re.M)
    assert sorted(rows) == sorted(_settings_read())


def test_demo_values_are_those_of_env_example() -> None:
    example = dotenv_values(ROOT / ".env.example")
    secrets = ("WX_TOKEN", "WX_AES_KEY", "WX_APPID", "WX_APPSECRET")
    assert DEMO_VALUES == {name: example[name] for name in secrets if example.get(name)}


def test_demo_values_read_from_a_file_are_named() -> None:
    settings = load_settings({"WX_DOTENV": str(ROOT / ".env.example")})
    assert demo_warning(settings) == (
        "PUBLIC DEMO VALUES: WX_TOKEN, WX_AES_KEY and WX_APPID still hold the values published"
        " in .env.example. Anyone who has read it can forge pushes to this service and read its"
        " replies: put your account's own values in .env (`python -m app keygen` makes a Token"
        " and EncodingAESKey)."
    )


def test_one_demo_value_left_in_the_environment_is_named() -> None:
    settings = load(WX_APPID=APPID, WX_AES_KEY=DEMO_VALUES["WX_AES_KEY"])
    warning = demo_warning(settings)
    assert warning is not None
    assert warning.startswith(
        "PUBLIC DEMO VALUES: WX_AES_KEY still holds the value published in .env.example."
    )
    assert DEMO_VALUES["WX_AES_KEY"] not in warning


def test_own_values_raise_no_warning() -> None:
    assert demo_warning(load(WX_APPID=APPID, WX_AES_KEY=AES_KEY)) is None
