"""Benchmarks of wx-push: each module run as ``python bench/<name>.py`` prints its figures.

The modules without a ``main`` are the pieces the commands share: the account and the pushes
(``account``), the servers (``servers``), WeChat's side of the wire (``wire``), wrk
(``wrk``), the apps compared with (``floor_app``, ``wechatpy_app``) and the handlers the
service runs under load (``handlers``).
"""
