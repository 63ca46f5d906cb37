"""Which account the work at hand is for: entered, nested, left on an error, across threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from app import scope


def test_a_block_names_its_account_and_gives_the_outer_one_back() -> None:
    assert scope.account() == ""
    with scope.serving("shop"):
        with scope.serving("news"):
            assert scope.account() == "news"
        assert scope.account() == "shop"
    assert scope.account() == ""


def test_a_block_that_raises_gives_the_outer_account_back() -> None:
    with scope.serving("shop"):
        with pytest.raises(ValueError), scope.serving("news"):
            raise ValueError("in the block")
        assert scope.account() == "shop"


def test_bound_work_runs_for_its_account_on_another_thread() -> None:
    with ThreadPoolExecutor(1) as pool:
        with scope.serving("news"):
            seen = pool.submit(scope.bound("shop", scope.account)).result()
        assert seen == "shop"
        assert pool.submit(scope.account).result() == ""
