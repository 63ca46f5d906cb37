"""The fuzz command's parts: cases built as WeChat would sign them, and the app they go to.

A case is generated from ``(seed, index)`` alone, so any case of a run can be replayed. Three
families, each signed with a fresh timestamp and, in the encrypted modes, encrypted with the
account's key, so that they get past the signature checks and reach what they aim at:

* :mod:`.mutations`: valid pushes of every type with fields broken (the parser, the message
  model, the ledger, the handler and the reply);
* :mod:`.queries`: hostile query strings and headers (the envelope's checks, the handshake);
* :mod:`.hostile`: hostile documents and AES envelopes (the codec and the crypto).

:mod:`.wire` signs and encrypts them, written apart from the service's own code. :mod:`.target`
runs a case against the real app and tells an internal error from a refusal, :mod:`.replies`
tells a reply WeChat could read from one it could not; :mod:`.campaign` runs ranges of cases,
shrinks each distinct failure and tallies the rest, and :mod:`.runner` spreads the ranges over
worker processes with a watchdog for hangs.
"""
