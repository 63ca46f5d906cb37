"""Settings of several accounts: prefixed variables, a file of accounts, and one message per
mistake that names the account and the setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config import (
    DEMO_VALUES,
    AccountSettings,
    AccountType,
    ConfigError,
    Settings,
    SlowStrategy,
    demo_warning,
    load_settings,
)

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx1a2b3c4d5e6f7a8b"
SHOP = {"WX_ACCOUNTS": "shop", "WX_SHOP_TOKEN": "shopToken2026"}


def load(**env: str) -> Settings:
    return load_settings(env, dotenv=False)


def served(settings: Settings) -> list[tuple[str, str, str]]:
    return [(s.name, s.path, s.token) for s in settings.each_account()]


def test_one_account_is_the_default_account_as_before() -> None:
    settings = load(WX_TOKEN="weixinpush2026")
    assert settings.each_account() == (settings,)
    assert settings.account() == settings.account("default") == settings
    assert settings.account().name == "default"


def test_prefixed_settings_configure_another_account() -> None:
    settings = load(
        WX_TOKEN="weixinpush2026",
        **SHOP,
        WX_SHOP_APPID=APPID,
        WX_SHOP_AES_KEY=AES_KEY,
        WX_SHOP_APPSECRET="s3cr3t",
        WX_SHOP_HANDLERS="shop_handlers",
        WX_SHOP_ACCOUNT_TYPE="miniprogram",
        WX_SHOP_SLOW_STRATEGY="off",
        WX_SHOP_PATH="/hooks/shop",
    )
    assert settings.accounts == (
        AccountSettings(
            name="shop",
            token="shopToken2026",
            appid=APPID,
            aes_key=AES_KEY,
            appsecret="s3cr3t",
            path="/hooks/shop",
            handlers="shop_handlers",
            account_type=AccountType.MINIPROGRAM,
            slow_strategy=SlowStrategy.OFF,
        ),
    )
    shop = settings.account("shop")
    assert (shop.name, shop.path, shop.appsecret, shop.accounts) == (
        "shop",
        "/hooks/shop",
        "s3cr3t",
        (),
    )
    assert shop.store_url == settings.store_url  # the process's settings are shared


def test_behaviour_is_inherited_and_identity_is_not() -> None:
    settings = load(
        WX_TOKEN="weixinpush2026",
        WX_APPID=APPID,
        WX_AES_KEY=AES_KEY,
        WX_APPSECRET="s3cr3t",
        WX_ACCOUNT_TYPE="miniprogram",
        WX_HANDLERS="everyone",
        WX_SLOW_STRATEGY="customer_service",
        **SHOP,
    )
    shop = settings.account("shop")
    assert (shop.handlers, shop.slow_strategy) == ("everyone", SlowStrategy.CUSTOMER_SERVICE)
    assert (shop.appid, shop.aes_key, shop.appsecret) == ("", "", "")
    assert (shop.path, shop.account_type) == ("/wx/shop", AccountType.OFFICIAL)


def test_named_accounts_alone() -> None:
    settings = load(**SHOP, WX_HANDLERS="everyone")
    assert served(settings) == [("shop", "/wx/shop", "shopToken2026")]
    assert settings.account().name == "shop"  # the only one


def test_a_file_of_accounts_and_the_environment_over_it(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(
        '[shop]\ntoken = "fromFile01"\nappid = "wx0000000000000001"\nrequire_encryption = false\n'
        '\n[mini]\ntoken = "miniToken01"\naccount_type = "miniprogram"\n'
    )
    settings = load(
        WX_TOKEN="weixinpush2026",
        WX_ACCOUNTS="shop",
        WX_SHOP_TOKEN="fromEnv01",
        WX_ACCOUNTS_FILE=str(path),
    )
    assert served(settings) == [
        ("default", "/wx", "weixinpush2026"),
        ("shop", "/wx/shop", "fromEnv01"),
        ("mini", "/wx/mini", "miniToken01"),
    ]
    assert settings.account("shop").appid == "wx0000000000000001"
    assert settings.account("mini").account_type is AccountType.MINIPROGRAM


def test_a_json_file_of_accounts(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"shop": {"token": "jsonToken01", "path": "/shop"}}))
    assert served(load(WX_ACCOUNTS_FILE=str(path))) == [("shop", "/shop", "jsonToken01")]


def test_which_account_without_a_name() -> None:
    settings = load(WX_ACCOUNTS="shop,mini", WX_SHOP_TOKEN="shop01", WX_MINI_TOKEN="mini01")
    with pytest.raises(ConfigError) as info:
        settings.account()
    assert info.value.message == "Several accounts are served: shop, mini."
    with pytest.raises(ConfigError) as info:
        settings.account("shopp")
    assert info.value.message == "There is no account 'shopp'; the accounts served are shop, mini."


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {**SHOP, "WX_SHOP_TOKEN": "ab"},
            "account 'shop': WX_SHOP_TOKEN must be 3-32 letters and digits (got 2 characters).",
        ),
        ({"WX_ACCOUNTS": "shop"}, "account 'shop': WX_SHOP_TOKEN is not set. Set it,"),
        (
            {**SHOP, "WX_SHOP_AES_KEY": AES_KEY},
            "account 'shop': WX_SHOP_APPID is required when WX_SHOP_AES_KEY is set",
        ),
        (
            {**SHOP, "WX_SHOP_AES_KEY": AES_KEY[:42], "WX_SHOP_APPID": APPID},
            "account 'shop': WX_SHOP_AES_KEY must be 43 letters and digits (got 42 characters).",
        ),
        (
            {**SHOP, "WX_SHOP_ACCOUNT_TYPE": "service"},
            "account 'shop': WX_SHOP_ACCOUNT_TYPE='service' is not valid: use official",
        ),
        (
            {**SHOP, "WX_SLOW_STRATEGY": "fast"},
            "account 'shop': WX_SLOW_STRATEGY='fast' is not valid",  # inherited, named as set
        ),
        (
            {**SHOP, "WX_SHOP_PATH": "shop"},
            "account 'shop': WX_SHOP_PATH must start with '/'",
        ),
        (
            {**SHOP, "WX_REQUIRE_ENCRYPTION": "true"},
            "account 'shop': WX_REQUIRE_ENCRYPTION is on but WX_SHOP_AES_KEY is not set.",
        ),
        ({"WX_ACCOUNTS": "Shop"}, "WX_ACCOUNTS: account name 'Shop' is not valid"),
        ({"WX_ACCOUNTS": "default"}, "WX_ACCOUNTS: 'default' is the name of the account"),
        ({"WX_ACCOUNTS": "shop,shop", "WX_SHOP_TOKEN": "abc"}, "WX_ACCOUNTS names 'shop' twice."),
        (
            {"WX_TOKEN": "abc", **SHOP, "WX_SHOP_PATH": "/wx"},
            "Accounts 'default' and 'shop' both have the path /wx; give each a path of its own"
            " (WX_SHOP_PATH).",
        ),
        (
            {**SHOP, "WX_APPID": APPID},
            "WX_APPID is set but WX_TOKEN is not: the default account needs its Token.",
        ),
        ({}, "WX_TOKEN is not set."),
    ],
)
def test_a_mistake_names_the_account_and_the_setting(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(**env)
    assert info.value.message.startswith(says), info.value.message


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('[shop]\ntoken = "sh"\n', "account 'shop': accounts.toml [shop] token must be 3-32"),
        ("[shop]\n", "account 'shop': accounts.toml [shop] token is not set."),
        (
            '[shop]\ntoken = "shopToken2026"\nslow_strategy = "fast"\n',
            "account 'shop': accounts.toml [shop] slow_strategy='fast' is not valid",
        ),
        (
            '[shop]\ntokn = "shopToken2026"\n',
            "account 'shop': WX_ACCOUNTS_FILE=accounts.toml: [shop] has no setting 'tokn'; the"
            " settings are account_type, aes_key, appid,",
        ),
        ("[shop]\ntoken = 42\n", "account 'shop': WX_ACCOUNTS_FILE=accounts.toml: [shop] token"),
        ("token = 'x'\n", "WX_ACCOUNTS_FILE=accounts.toml: [token] must be a table"),
        ("[shop\n", "WX_ACCOUNTS_FILE=accounts.toml is not valid TOML: "),
        ("[Shop]\n", "WX_ACCOUNTS_FILE=accounts.toml: account name 'Shop' is not valid"),
    ],
)
def test_a_mistake_in_the_file_names_the_account_the_file_and_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "accounts.toml").write_text(content)
    with pytest.raises(ConfigError) as info:
        load(WX_ACCOUNTS_FILE="accounts.toml")
    assert info.value.message.startswith(says), info.value.message


def test_a_missing_file_of_accounts_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(WX_ACCOUNTS_FILE=str(tmp_path / "absent.toml"))
    assert info.value.message.startswith(
        f"WX_ACCOUNTS_FILE={tmp_path / 'absent.toml'} cannot be read (No such file or directory)."
    )


def test_secrets_are_not_echoed_for_another_account() -> None:
    with pytest.raises(ConfigError) as info:
        load(**SHOP, WX_SHOP_AES_KEY="x" * 42 + "!", WX_SHOP_APPID=APPID)
    assert "x" * 10 not in info.value.message


def test_demo_values_in_another_account_are_named() -> None:
    settings = load(
        WX_TOKEN="weixinpush2026",
        **SHOP,
        WX_SHOP_AES_KEY=DEMO_VALUES["WX_AES_KEY"],
        WX_SHOP_APPID=APPID,
    )
    warning = demo_warning(settings)
    assert warning is not None
    assert warning.startswith("PUBLIC DEMO VALUES: WX_SHOP_AES_KEY still holds the value")


def test_accounts_built_in_code_are_checked_too() -> None:
    twice = Settings(token="abc", accounts=(AccountSettings(name="shop", token="abc", path="/wx"),))
    with pytest.raises(ConfigError, match="both have the path /wx"):
        twice.each_account()
    with pytest.raises(ConfigError, match="No account is configured"):
        Settings().each_account()
