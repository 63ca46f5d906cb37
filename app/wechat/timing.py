"""WeChat's timing facts about a push, in one place (PROTOCOL.md §6).

WeChat waits five seconds for an answer, then drops the connection and sends the same push
again, three attempts in all, about five seconds apart. Everything the service decides about
time (when to answer, when to lapse, when a push's process is presumed dead, when late delivery
may start) derives from these numbers.
"""

from __future__ import annotations

#: Seconds WeChat waits for an answer to one attempt before it drops the connection.
ANSWER_WINDOW = 5.0
#: Attempts WeChat makes per push; the last one is answered "success" if nothing is ready.
ATTEMPTS = 3
#: Seconds from the first attempt after which WeChat has stopped retrying (3 × ~5 s + slack).
RETRY_WINDOW = 20.0
#: Seconds after a push's ``CreateTime`` from which an attempt can only be WeChat's last: the
#: third attempt comes ~10 s after the message, the second ~5 s. An attempt the service never saw
#: (refused during a restart, recorded in a store that failed over) would otherwise leave it
#: counting one short, and the real last attempt would lapse with no answer at all.
LAST_ATTEMPT_AFTER = 9.0
#: Seconds a claim outlives the last sign of life of its process: long enough for a busy store
#: to miss a few renewals, short enough that the next attempt (5 s later) can take over.
LEASE_TTL = 5.0
#: Seconds between renewals of a lease by the process running the push's handler.
LEASE_RENEWAL = 1.0


def is_last_attempt(attempt: int, *, create_time: int, now: float) -> bool:
    """Whether an attempt is WeChat's last, by its count or by the time since the message.

    :param attempt: the attempt's number as the ledger counted it.
    :param create_time: the push's ``CreateTime`` (WeChat's clock, Unix seconds).
    :param now: the server's Unix time; NTP keeps the two clocks within a second.
    """
    return attempt >= ATTEMPTS or now - create_time >= LAST_ATTEMPT_AFTER
