"""The start image of a video frame: constant blend, flow-guided carry, the mask and --blend."""

from __future__ import annotations

import numpy as np
import pytest
from test_flow import pan, textured

from cnnvis.errors import InputError
from cnnvis.recipes.video import DREAM_COHERENCE, INVERT_COHERENCE
from cnnvis.video.coherence import (
    Coherence,
    CoherenceDefaults,
    VideoOptions,
    default_texts,
    feather,
    from_flags,
)


def test_first_frame_starts_from_itself_or_the_fallback():
    f = textured(16, 16)
    start, mask = Coherence("dis", 0.85).start(None, f, None)
    assert mask is None and np.array_equal(start, f)
    grey = np.full_like(f, 0.5)
    assert np.array_equal(Coherence("dis", 0.85).start(None, f, None, fallback=grey)[0], grey)


def test_constant_blend():
    f0, f1 = pan(3)
    prev = textured(*f1.shape[:2], seed=7)
    start, mask = Coherence("none", 0.85).start(f0, f1, prev)
    assert mask is None
    assert np.allclose(start, 0.85 * prev + 0.15 * f1, atol=1e-6)


def test_flow_carries_the_previous_result_along_the_motion():
    """The previous result, a pattern that moves with the scene, lands where the scene went."""
    v = 3
    f0, f1 = pan(v)
    pattern = textured(96, 128 + v, seed=9)  # the "dream" painted on the scene
    prev_out, now = pattern[:, :128], pattern[:, v : 128 + v]
    start, mask = Coherence("dis", 1.0).start(f0, f1, prev_out)
    inner = mask[8:-8, 8:-8] > 0.99
    assert inner.mean() > 0.9
    err_flow = np.abs(start - now)[8:-8, 8:-8][inner].mean()
    err_constant = np.abs(Coherence("none", 1.0).start(f0, f1, prev_out)[0] - now)[8:-8, 8:-8][inner].mean()
    assert err_flow < 0.02 and err_flow < 0.2 * err_constant
    # the uncovered border starts from the new frame, whatever --blend says
    assert np.allclose(start[:, -v:], f1[:, -v:]) and (mask[:, -v:] == 0).all()


def test_blend_weights_the_carried_result():
    f0, f1 = pan(3)
    prev = textured(96, 128, seed=4)
    full, mask = Coherence("dis", 1.0).start(f0, f1, prev)
    zero, _ = Coherence("dis", 0.0).start(f0, f1, prev)
    half, _ = Coherence("dis", 0.5).start(f0, f1, prev)
    assert np.allclose(zero, f1)
    assert np.allclose(half, (full + f1) / 2, atol=1e-5)
    assert full.dtype == np.float32 and 0 <= full.min() and full.max() <= 1


def test_previous_result_of_another_size_is_resized():
    f0, f1 = pan(3)
    big = np.repeat(np.repeat(textured(96, 128, seed=5), 2, 0), 2, 1)  # a render at twice the frame size
    start, _ = Coherence("none", 1.0).start(f0, f1, big)
    assert start.shape == f1.shape


def test_feather_keeps_unreliable_pixels_at_zero():
    hard = np.ones((20, 20), bool)
    hard[:, 10:] = False
    soft = feather(hard)
    assert (soft[:, 10:] == 0).all() and (soft <= 1).all()
    assert 0 < soft[5, 9] < 1 and soft[5, 0] > 0.99


def test_flags_and_defaults():
    assert from_flags(None, None, None, DREAM_COHERENCE) == Coherence("dis", 0.85, 10.0)
    assert from_flags("none", None, None, DREAM_COHERENCE) == Coherence("none", 0.5, 0.0)
    assert from_flags("farneback", None, None, INVERT_COHERENCE) == Coherence("farneback", 1.0, 0.0)
    assert from_flags("none", None, None, INVERT_COHERENCE) == Coherence("none", 1.0, 0.0)
    assert from_flags(None, 0.3, 2.0, DREAM_COHERENCE) == Coherence("dis", 0.3, 2.0)
    with pytest.raises(InputError, match=r"--blend 1.5 is outside \[0, 1\]"):
        from_flags(None, 1.5, None, DREAM_COHERENCE)
    with pytest.raises(InputError, match="unknown --flow 'raft'"):
        Coherence("raft", 0.5)
    with pytest.raises(InputError, match="--temporal-weight 5.0 holds the result along the optical flow"):
        from_flags("none", None, 5.0, INVERT_COHERENCE)
    with pytest.raises(InputError, match="--temporal-weight -1 is negative"):
        Coherence("dis", 0.5, -1)


def test_defaults_are_data_checked_like_the_flags():
    custom = CoherenceDefaults(blend=0.6, temporal=3.0, flow="farneback")
    assert from_flags(None, None, None, custom) == Coherence("farneback", 0.6, 3.0)
    assert from_flags("none", None, None, custom) == Coherence("none", 0.6, 0.0)  # no constant_blend: the blend
    with pytest.raises(InputError, match="--blend 2"):
        CoherenceDefaults(blend=2, temporal=0.0)
    with pytest.raises(InputError, match="--blend -0.5"):
        CoherenceDefaults(blend=0.5, temporal=0.0, constant_blend=-0.5)
    with pytest.raises(InputError, match="unknown --flow 'raft'"):
        CoherenceDefaults(blend=0.5, temporal=0.0, flow="raft")


def test_help_texts_come_from_the_defaults():
    assert default_texts(DREAM_COHERENCE) == {
        "flow": "dis",
        "blend": "0.85; 0.5 with --flow none",
        "temporal": "10; 0 with --flow none",
    }
    assert default_texts(INVERT_COHERENCE) == {"flow": "dis", "blend": "1", "temporal": "0"}
    assert default_texts(CoherenceDefaults(blend=0.9, temporal=4.0, constant_blend=0.4, flow="none")) == {
        "flow": "none",
        "blend": "0.4; 0.9 with --flow dis or farneback",
        "temporal": "0; 4 with --flow dis or farneback",
    }


def test_options_group_declares_the_flags_once():
    by_name = {s.name: s for s in VideoOptions.settings()}
    assert list(by_name) == ["flow", "blend", "temporal"]
    assert by_name["flow"].choices == ("dis", "farneback", "none") and by_name["flow"].default_text == "dis"
    assert (by_name["blend"].low, by_name["blend"].high) == (0, 1)
    assert by_name["temporal"].flag == "--temporal-weight" and by_name["temporal"].low == 0
    assert all(s.default is None and s.optional for s in by_name.values())
    assert not VideoOptions().given() and VideoOptions(blend=0.2).given()
    assert VideoOptions().coherence(DREAM_COHERENCE) == from_flags(None, None, None, DREAM_COHERENCE)
    assert VideoOptions("none", 0.7).coherence(INVERT_COHERENCE) == Coherence("none", 0.7, 0.0)
    with pytest.raises(InputError, match="--blend"):
        VideoOptions(blend=1.5)
    with pytest.raises(InputError, match="--temporal-weight"):
        VideoOptions(temporal=-1.0)


def test_coherence_names_no_command():
    import inspect

    import cnnvis.video.coherence as coherence

    src = inspect.getsource(coherence)
    assert '== "invert"' not in src and '== "dream"' not in src


def test_penalties_only_where_something_was_carried():
    f0, f1 = pan(3)
    prev = textured(96, 128, seed=4)
    coh = Coherence("dis", 0.85, 10.0)
    start, mask, warped = coh.start_and_carry(f0, f1, prev)
    (term,) = coh.penalties(warped, mask)
    assert term.weight == 10.0 and term.target is warped and term.mask is mask
    _, mask0, warped0 = coh.start_and_carry(None, f1, None)  # the first frame: nothing carried
    assert coh.penalties(warped0, mask0) == []
    assert Coherence("dis", 0.85, 0.0).penalties(warped, mask) == []
    assert Coherence("none", 0.85).start_and_carry(f0, f1, prev)[1:] == (None, None)
