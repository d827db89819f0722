"""A Ctrl-C while a command loads is kept until its first step (torch swallows one raised
inside its import); a second one stops at once; an ignored SIGINT stays ignored."""

from __future__ import annotations

import os
import signal
import time

import pytest

from cnnvis.cli.interrupts import DeferredInterrupt, begin_work, raise_if_asked


def _ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
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


def test_no_ctrl_c_means_no_interrupt_and_the_default_handler_after_loading():
    with DeferredInterrupt():
        raise_if_asked()
        begin_work()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):
            _ctrl_c()  # after loading, Ctrl-C raises as usual


def test_an_ignored_sigint_stays_ignored():
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with DeferredInterrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            _ctrl_c()
            begin_work()
    finally:
        signal.signal(signal.SIGINT, old)
