"""Router: registration, the documented dispatch order, resolve/dispatch, load_router."""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.router import HandlerLoadError, Route, Router, load_router
from app.wechat.events import ClickEvent, SubscribeEvent
from app.wechat.messages import Message, TextMessage, parse_message
from tests import handlers_fixture

ACCOUNT = "gh_0123456789ab"
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"


def push(msg_type: str, **fields: Any) -> Message:
    common = {"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": "1732406400"}
    return parse_message({**common, "MsgType": msg_type, "MsgId": "24812345678901234", **fields})


def text(content: str) -> Message:
    return push("text", Content=content)


def event(name: str, key: str = "", **fields: Any) -> Message:
    return push("event", Event=name, EventKey=key, **fields)


def answer(name: str) -> Any:
    """A handler of (message) that answers with its own name."""
    return lambda message: name


# -- registration --------------------------------------------------------------------------


def test_decorators_return_the_function_unchanged() -> None:
    router = Router()

    def handler(message: Message) -> str:
        return "x"

    def regex_handler(message: TextMessage, match: re.Match[str]) -> str:
        return "x"

    def text_handler(message: TextMessage) -> str:
        return "x"

    assert router.message("shortvideo")(handler) is handler
    assert router.event("CLICK", key="K")(handler) is handler
    assert router.keyword("help")(text_handler) is text_handler
    assert router.regex(r"^order (\d+)$")(regex_handler) is regex_handler
    assert router.text(text_handler) is text_handler
    assert router.fallback(handler) is handler


@pytest.mark.parametrize(
    ("register", "fields"),
    [
        (Router.image, {"MsgType": "image", "PicUrl": "u", "MediaId": "m"}),
        (Router.voice, {"MsgType": "voice", "MediaId": "m", "Format": "amr"}),
        (Router.video, {"MsgType": "video", "MediaId": "m", "ThumbMediaId": "t"}),
        (Router.location, {"MsgType": "location", "Location_X": "1", "Location_Y": "2"}),
        (Router.link, {"MsgType": "link", "Title": "t", "Url": "u"}),
    ],
)
def test_message_type_decorators(register: Any, fields: dict[str, str]) -> None:
    router = Router()
    register(router, answer("typed"))
    assert router.dispatch(push(fields.pop("MsgType"), **fields)) == "typed"


def test_subscribe_shortcut() -> None:
    router = Router()

    @router.subscribe
    def welcome(message: SubscribeEvent) -> str:
        return f"welcome from {message.scene or 'search'}"

    assert router.dispatch(event("subscribe", "qrscene_42", Ticket="t")) == "welcome from 42"


def test_click_shortcut_with_and_without_key() -> None:
    router = Router()

    @router.click("MENU_HELP")
    def help_menu(message: ClickEvent) -> str:
        return "help"

    @router.click()
    def any_menu(message: ClickEvent) -> str:
        return f"menu {message.event_key}"

    assert router.dispatch(event("CLICK", "MENU_HELP")) == "help"
    assert router.dispatch(event("CLICK", "MENU_SHOP")) == "menu MENU_SHOP"


def test_two_criteria_are_refused() -> None:
    with pytest.raises(ValueError) as info:
        Router().add_handler(answer("x"), msg_type="text", keyword="help")
    assert (
        str(info.value)
        == "give one of msg_type, event, keyword, pattern; got ['msg_type', 'keyword']"
    )


def test_key_without_event_is_refused() -> None:
    with pytest.raises(ValueError) as info:
        Router().add_handler(answer("x"), key="MENU_HELP")
    assert str(info.value) == "key matches an event's EventKey; give event as well"


@pytest.mark.parametrize("criterion", ["msg_type", "event", "keyword", "pattern"])
def test_empty_criterion_is_refused(criterion: str) -> None:
    with pytest.raises(ValueError) as info:
        Router().add_handler(answer("x"), **{criterion: ""})
    assert str(info.value) == f"{criterion} must not be empty; register a fallback to match all"


def test_keyword_with_surrounding_whitespace_is_refused() -> None:
    with pytest.raises(ValueError) as info:
        Router().keyword(" help")(answer("x"))
    assert str(info.value) == "keyword ' help' has surrounding whitespace; it never matches"


def first_handler(message: Message) -> str:
    return "first"


@pytest.mark.parametrize(
    ("criteria", "what"),
    [
        ({"msg_type": "text"}, "msg_type 'TEXT'"),
        ({"event": "click"}, "event 'CLICK'"),
        ({"event": "click", "key": "K"}, "event 'CLICK' with key 'K'"),
        ({"keyword": "help"}, "keyword 'help'"),
        ({"pattern": r"^\d+$"}, "pattern '^\\\\d+$'"),
    ],
)
def test_second_handler_for_the_same_thing_is_refused(criteria: dict[str, str], what: str) -> None:
    router = Router()
    router.add_handler(first_handler, **criteria)
    again = {
        key: value.upper() if key in ("msg_type", "event") else value
        for key, value in criteria.items()
    }
    with pytest.raises(ValueError) as info:
        router.add_handler(answer("second"), **again)
    assert str(info.value) == f"{what} is already handled by tests.test_router.first_handler"


def test_second_fallback_is_refused() -> None:
    router = Router()
    router.fallback(first_handler)
    with pytest.raises(ValueError) as info:
        router.fallback(answer("second"))
    assert str(info.value) == "the fallback is already tests.test_router.first_handler"


# -- dispatch order ------------------------------------------------------------------------


def full_router() -> Router:
    """One handler at every level of the documented order."""
    router = Router()
    router.fallback(answer("fallback"))
    router.message("text")(answer("msg_type text"))
    router.message("event")(answer("msg_type event"))
    router.event("CLICK")(answer("event CLICK"))
    router.event("CLICK", key="MENU_HELP")(answer("event CLICK key MENU_HELP"))
    router.regex(r"^order (\d+)$")(lambda message, match: f"order {match.group(1)}")
    router.regex(r"order")(lambda message, match: "second pattern")
    router.keyword("order 7")(answer("keyword order 7"))
    return router


def test_keyword_comes_first() -> None:
    assert full_router().dispatch(text("order 7")) == "keyword order 7"


def test_keyword_matches_after_stripping_surrounding_whitespace() -> None:
    assert full_router().dispatch(text("  order 7\n")) == "keyword order 7"


def test_keyword_is_case_sensitive() -> None:
    router = Router()
    router.keyword("help")(answer("help"))
    assert router.dispatch(text("HELP")) is None


def test_regex_comes_after_keywords() -> None:
    assert full_router().dispatch(text("order 8")) == "order 8"


def test_regexes_are_tried_in_registration_order() -> None:
    assert full_router().dispatch(text("my order")) == "second pattern"


def test_regex_searches_the_unstripped_content() -> None:
    assert full_router().dispatch(text(" order 9")) == "second pattern"


def test_regex_handler_gets_the_match() -> None:
    router = Router()
    seen: list[tuple[Message, re.Match[str]]] = []

    @router.regex(re.compile(r"(\d+)"))
    def order(message: TextMessage, match: re.Match[str]) -> None:
        seen.append((message, match))

    message = text("order 12")
    router.dispatch(message)
    assert seen[0][0] is message
    assert seen[0][1].group(1) == "12"


def test_text_without_keyword_or_pattern_goes_to_msg_type() -> None:
    assert full_router().dispatch(text("hello")) == "msg_type text"


def test_event_with_key_comes_before_event() -> None:
    assert full_router().dispatch(event("CLICK", "MENU_HELP")) == "event CLICK key MENU_HELP"


def test_event_key_is_compared_exactly() -> None:
    assert full_router().dispatch(event("CLICK", "menu_help")) == "event CLICK"


@pytest.mark.parametrize("name", ["CLICK", "click", "Click"])
def test_event_name_is_compared_case_insensitively(name: str) -> None:
    router = Router()
    router.event("click", key="MENU_HELP")(answer("help"))
    assert router.dispatch(event(name, "MENU_HELP")) == "help"


def test_event_without_handler_goes_to_msg_type_event() -> None:
    assert full_router().dispatch(event("VIEW", "https://example.com/")) == "msg_type event"


def test_qr_subscribe_matches_its_event_key_with_prefix() -> None:
    router = Router()
    router.event("subscribe", key="qrscene_42")(answer("poster 42"))
    router.event("subscribe", key="")(answer("plain follow"))
    assert router.dispatch(event("subscribe", "qrscene_42", Ticket="t")) == "poster 42"
    assert router.dispatch(event("subscribe", "")) == "plain follow"


def test_keyword_does_not_match_an_event_key() -> None:
    router = Router()
    router.keyword("MENU_HELP")(answer("keyword"))
    assert router.dispatch(event("CLICK", "MENU_HELP")) is None


def test_unknown_type_goes_to_fallback() -> None:
    assert full_router().dispatch(push("file", Title="report.pdf")) == "fallback"


def test_msg_type_is_compared_case_insensitively() -> None:
    router = Router()
    router.message("TEXT")(answer("text"))
    assert router.dispatch(text("hi")) == "text"


def test_nothing_matches() -> None:
    router = Router()
    router.text(answer("text"))
    assert router.dispatch(push("image", PicUrl="u", MediaId="m")) is None
    assert router.resolve(push("image", PicUrl="u", MediaId="m")) is None


# -- resolve and dispatch ------------------------------------------------------------------


def test_resolve_binds_the_handler_without_calling_it() -> None:
    calls: list[Message] = []
    router = Router()

    @router.text
    def on_text(message: TextMessage) -> str:
        calls.append(message)
        return "answered"

    message = text("hi")
    route = router.resolve(message)
    assert route == Route(on_text, (message,))
    assert calls == []
    assert route() == "answered"
    assert calls == [message]


def test_route_name_is_module_and_qualname() -> None:
    route = handlers_fixture.router.resolve(text("hi"))
    assert route is not None
    assert route.name == "tests.handlers_fixture.on_text"


def test_route_name_of_something_without_qualname() -> None:
    class Callable:
        def __call__(self, message: Message) -> str:
            return "x"

        def __repr__(self) -> str:
            return "<handler object>"

    assert Route(Callable(), ()).name == "<handler object>"


def test_dispatch_returns_what_the_handler_returned() -> None:
    assert handlers_fixture.router.dispatch(text("hi")) == "echo: hi"


def test_dispatch_lets_exceptions_through() -> None:
    router = Router()

    @router.text
    def broken(message: TextMessage) -> str:
        raise RuntimeError("handler bug")

    with pytest.raises(RuntimeError, match="^handler bug$"):
        router.dispatch(text("hi"))


# -- load_router ---------------------------------------------------------------------------


@pytest.fixture
def forget_modules() -> Iterator[list[str]]:
    """Names of modules a test imports, removed from sys.modules afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture
def handlers_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forget_modules: list[str]
) -> Iterator[Path]:
    """A working directory that is not on sys.path, as under a server started elsewhere."""
    monkeypatch.chdir(tmp_path)
    cwd = os.path.realpath(tmp_path)
    path = [entry for entry in sys.path if entry and os.path.realpath(entry) != cwd]
    monkeypatch.setattr(sys, "path", path)
    yield tmp_path
    importlib.invalidate_caches()


def write_module(directory: Path, name: str, source: str, forget: list[str]) -> None:
    (directory / f"{name}.py").write_text(source, encoding="utf-8")
    forget.append(name)
    importlib.invalidate_caches()


def test_module_gives_its_router() -> None:
    assert load_router("tests.handlers_fixture") is handlers_fixture.router


def test_module_and_name_gives_that_router() -> None:
    assert load_router("tests.handlers_fixture:other_router") is handlers_fixture.other_router


def test_module_in_the_working_directory(handlers_dir: Path, forget_modules: list[str]) -> None:
    source = "from app.router import Router\nrouter = Router()\n"
    write_module(handlers_dir, "wx_cwd_handlers", source, forget_modules)
    router = load_router("wx_cwd_handlers")
    assert isinstance(router, Router)
    assert sys.path[0] == str(handlers_dir)


def test_working_directory_is_not_added_twice(
    handlers_dir: Path, forget_modules: list[str]
) -> None:
    sys.path.insert(0, "")
    write_module(
        handlers_dir,
        "wx_cwd_twice",
        "from app.router import Router\nrouter = Router()\n",
        forget_modules,
    )
    before = list(sys.path)
    load_router("wx_cwd_twice")
    assert sys.path == before


def test_module_not_found(handlers_dir: Path) -> None:
    with pytest.raises(HandlerLoadError) as info:
        load_router("wx_no_such_handlers")
    assert str(info.value) == (
        "Could not import 'wx_no_such_handlers': no module named 'wx_no_such_handlers'. It must be"
        f" importable from the working directory ({os.getcwd()}) or PYTHONPATH."
    )
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_package_not_found(handlers_dir: Path) -> None:
    with pytest.raises(HandlerLoadError) as info:
        load_router("wx_no_such_package.handlers:router")
    assert str(info.value).startswith(
        "Could not import 'wx_no_such_package.handlers': no module named 'wx_no_such_package'."
    )


def test_module_raising_import_error(handlers_dir: Path, forget_modules: list[str]) -> None:
    write_module(
        handlers_dir, "wx_broken_handlers", "import wx_missing_dependency\n", forget_modules
    )
    with pytest.raises(HandlerLoadError) as info:
        load_router("wx_broken_handlers")
    assert str(info.value) == (
        "While importing 'wx_broken_handlers', ModuleNotFoundError was raised at"
        f" {Path.cwd() / 'wx_broken_handlers.py'}, line 1"
        " (No module named 'wx_missing_dependency'). Install the package that provides"
        " 'wx_missing_dependency' in the service's virtualenv, or fix the import."
    )
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert info.value.__cause__.name == "wx_missing_dependency"


def test_module_raising_import_error_of_a_name(
    handlers_dir: Path, forget_modules: list[str]
) -> None:
    write_module(
        handlers_dir,
        "wx_bad_name_handlers",
        "import os\nfrom os import no_such_name\n",
        forget_modules,
    )
    with pytest.raises(HandlerLoadError) as info:
        load_router("wx_bad_name_handlers")
    message = str(info.value)
    assert message.startswith(
        "While importing 'wx_bad_name_handlers', ImportError was raised at"
        f" {Path.cwd() / 'wx_bad_name_handlers.py'}, line 2"
        " (cannot import name 'no_such_name' from 'os'"
    )
    assert message.endswith(". Fix the import.")
    assert type(info.value.__cause__) is ImportError


def test_syntax_error_names_the_file_and_line(
    handlers_dir: Path, forget_modules: list[str]
) -> None:
    source = "from app.router import Router\n\nrouter = Router(\n"
    write_module(handlers_dir, "wx_unparsable_handlers", source, forget_modules)
    with pytest.raises(HandlerLoadError) as info:
        load_router("wx_unparsable_handlers")
    assert str(info.value) == (
        "Could not import 'wx_unparsable_handlers': fix the syntax error at"
        f" {Path.cwd() / 'wx_unparsable_handlers.py'}, line 3 ('(' was never closed)."
    )
    assert isinstance(info.value.__cause__, SyntaxError)


def test_syntax_error_in_a_module_it_imports_names_that_file(
    handlers_dir: Path, forget_modules: list[str]
) -> None:
    write_module(handlers_dir, "wx_bad_helper", "def helper(:\n    pass\n", forget_modules)
    write_module(handlers_dir, "wx_helped_handlers", "import wx_bad_helper\n", forget_modules)
    with pytest.raises(HandlerLoadError) as info:
        load_router("wx_helped_handlers")
    assert str(info.value) == (
        "Could not import 'wx_helped_handlers': fix the syntax error at"
        f" {Path.cwd() / 'wx_bad_helper.py'}, line 1 (invalid syntax)."
    )


def test_other_exceptions_name_the_line(handlers_dir: Path, forget_modules: list[str]) -> None:
    source = "import os\n\nraise RuntimeError('bad config')\n"
    write_module(handlers_dir, "wx_raising_handlers", source, forget_modules)
    with pytest.raises(HandlerLoadError) as info:
        load_router("wx_raising_handlers")
    assert str(info.value) == (
        "While importing 'wx_raising_handlers', RuntimeError was raised at"
        f" {Path.cwd() / 'wx_raising_handlers.py'}, line 3 (bad config). Fix the module:"
        " the service cannot start until importing it succeeds."
    )
    assert isinstance(info.value.__cause__, RuntimeError)


def test_an_exception_without_text(handlers_dir: Path, forget_modules: list[str]) -> None:
    write_module(handlers_dir, "wx_silent_handlers", "raise KeyError\n", forget_modules)
    with pytest.raises(HandlerLoadError) as info:
        load_router("wx_silent_handlers")
    assert str(info.value).startswith(
        "While importing 'wx_silent_handlers', KeyError was raised at"
        f" {Path.cwd() / 'wx_silent_handlers.py'}, line 1. Fix the module:"
    )


def test_a_handler_registered_twice_names_the_users_line(
    handlers_dir: Path, forget_modules: list[str]
) -> None:
    source = (
        "from app.router import Router\n"
        "router = Router()\n"
        "\n"
        "@router.keyword('help')\n"
        "def first(message):\n"
        "    return 'one'\n"
        "\n"
        "@router.keyword('help')\n"
        "def second(message):\n"
        "    return 'two'\n"
    )
    write_module(handlers_dir, "wx_twice_handlers", source, forget_modules)
    with pytest.raises(HandlerLoadError) as info:
        load_router("wx_twice_handlers")
    assert str(info.value).startswith(
        "While importing 'wx_twice_handlers', ValueError was raised at"
        f" {Path.cwd() / 'wx_twice_handlers.py'}, line 8"
        " (keyword 'help' is already handled by wx_twice_handlers.first)."
    )


def test_attribute_missing() -> None:
    with pytest.raises(HandlerLoadError) as info:
        load_router("tests.handlers_fixture:routes")
    assert str(info.value) == (
        "Module 'tests.handlers_fixture' has no attribute 'routes'."
        " Use 'tests.handlers_fixture:name' to name the Router."
    )


def test_default_attribute_missing(handlers_dir: Path, forget_modules: list[str]) -> None:
    write_module(
        handlers_dir,
        "wx_no_router",
        "from app.router import Router\nbot = Router()\n",
        forget_modules,
    )
    with pytest.raises(HandlerLoadError) as info:
        load_router("wx_no_router")
    assert str(info.value) == (
        "Module 'wx_no_router' has no attribute 'router'."
        " Use 'wx_no_router:name' to name the Router."
    )


def test_attribute_not_a_router() -> None:
    with pytest.raises(HandlerLoadError) as info:
        load_router("tests.handlers_fixture:NOT_A_ROUTER")
    assert str(info.value) == (
        "'tests.handlers_fixture:NOT_A_ROUTER' is not a Router (found int)."
        " Use 'tests.handlers_fixture:name' to name the Router."
    )


@pytest.mark.parametrize("spec", ["", ":router", "my-handlers", "mod:", "mod:a:b", "mod:router()"])
def test_malformed_spec(spec: str) -> None:
    with pytest.raises(HandlerLoadError) as info:
        load_router(spec)
    assert str(info.value) == (
        f"handlers {spec!r} must be 'module' or 'module:name', e.g. 'myhandlers:router'"
    )
