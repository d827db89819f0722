"""A Ctrl-C or SIGTERM while a command loads is kept until its first step (torch swallows one
raised inside its import), and during the run until the next whole state; a second one stops at
once; an ignored signal stays ignored; the exit code says which signal came."""

from __future__ import annotations

import os
import signal
import time

import pytest

from cnnvis.cli.interrupts import DeferredInterrupt, asked, begin_work, exit_code, raise_if_asked


@pytest.fixture(autouse=True)
def _sigint_at_default(sigint_at_default):
    """Every test here starts as a command started from a terminal does."""


def _ctrl_c(sig=signal.SIGINT):
    os.kill(os.getpid(), sig)
    time.sleep(0.05)  # let the handler run


def test_first_ctrl_c_is_deferred_to_the_first_step():
    with DeferredInterrupt():
        _ctrl_c()  # no exception here: loading goes on
        with pytest.raises(KeyboardInterrupt):
            begin_work()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_second_ctrl_c_stops_at_once():
    with DeferredInterrupt(), pytest.raises(KeyboardInterrupt):
        _ctrl_c()
        _ctrl_c()


def test_no_ctrl_c_means_no_interrupt_and_a_deferred_one_during_the_run():
    with DeferredInterrupt():
        raise_if_asked()
        begin_work()
        assert not asked()
        _ctrl_c()  # during the run: the command stops at its next whole state
        assert asked() and exit_code() == 130
        with pytest.raises(KeyboardInterrupt):
            _ctrl_c()  # a second one: at once
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and not asked()


def test_sigterm_is_a_first_ctrl_c_with_exit_code_143():
    before = signal.getsignal(signal.SIGTERM)  # SIG_DFL, or a library's handler (Ray's, after an in-process session)
    with DeferredInterrupt():
        _ctrl_c(signal.SIGTERM)  # no exception: the process is not killed either
        assert asked() and exit_code() == 143
        with pytest.raises(KeyboardInterrupt):
            begin_work()
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_nested_command_shares_the_outer_flag():
    with DeferredInterrupt():
        _ctrl_c()
        with DeferredInterrupt():  # replay runs the recorded command inside its own
            assert asked()
        assert asked()


def test_an_ignored_sigint_stays_ignored():
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with DeferredInterrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            _ctrl_c()
            begin_work()
    finally:
        signal.signal(signal.SIGINT, old)
