"""The life of a push: claim it, run its handler, wait for it, answer it, deliver it late.

:mod:`.service` (``WeChatService``, the attempt state machine) carries a verified push to the
answer that leaves before the deadline, once per push, using the rest of this package:
:mod:`.ledger` (what every worker knows about a push, so it is handled once), :mod:`.lease`
(a claim lives only while the process running its handler does), :mod:`.runner` (the native
threads handlers run on, and the wait for them), :mod:`.policy` (the pure rules of what an
account may answer to what) and :mod:`.delivery` (replies that could not go back passively,
within each user's customer-service window, :mod:`app.window`). None of it imports Flask; the
view above hands it pushes.
"""
