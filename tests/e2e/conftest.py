"""pytest fixtures for the chatrelay end-to-end tests.

The machinery lives in harness.py; see its docstring. Fixtures:

* ``relay_factory``: ``relay_factory.make(**params)`` starts a fresh relay
  (own 127.0.0.x, temp data dir, config from DEFAULT_PARAMS + params);
  every relay is stopped at the end of the test, and a relay that died
  during the test fails it.
* ``relay``: one running relay with the defaults.
* ``gpg``: a session-wide GnuPG home with one key (real OpenPGP messages).
* ``dc``: a deltachat-rpc-server process (Delta Chat core) for the test.
* ``dcf``: makes Delta Chat accounts on a relay (via /new, dclogin, login).
"""

from __future__ import annotations

import pytest

from harness import DC, DCAccountFactory, Gpg, Relay, RelayFactory

_ACTIVE_FACTORIES: list[RelayFactory] = []


@pytest.fixture
def relay_factory(tmp_path_factory, request):
    factory = RelayFactory(tmp_path_factory, request)
    _ACTIVE_FACTORIES.append(factory)
    try:
        yield factory
    finally:
        _ACTIVE_FACTORIES.remove(factory)
        problems = factory.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def relay(relay_factory) -> Relay:
    """A fresh running relay in IP-literal mode with DEFAULT_PARAMS."""
    return relay_factory.make()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of every relay log of the test."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for factory in _ACTIVE_FACTORIES:
            for relay in factory.relays:
                report.sections.append(
                    (f"relay {relay.ip} log tail ({relay.log_path})", relay.log_tail(120))
                )


@pytest.fixture(scope="session")
def gpg(tmp_path_factory) -> Gpg:
    return Gpg(tmp_path_factory.mktemp("gnupg"))


@pytest.fixture
def dc(tmp_path) -> DC:
    d = DC(tmp_path / "dc-accounts", tmp_path / "deltachat-rpc-server.log")
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def dcf(dc) -> DCAccountFactory:
    return DCAccountFactory(dc)
