# SPDX-License-Identifier: LGPL-2.1-or-later
"""Bad and missing settings, through PyGObject: each is a RESOURCE/SETTINGS error at
READY->PAUSED that says what to do, and nothing is captured. The element fails closed: a
value that was never set, or that GObject rejected, never widens the capture."""
import pytest

from conftest import Gst, run_capture

CAPS = "audio/x-raw,format=F32LE,rate=48000,channels=2"


def settings_error(props):
    result = run_capture(f"pipewireprocsrc name=src {props} ! {CAPS} ! appsink name=sink",
                         seconds=2.0)
    assert result["error"] is not None, f"{props!r} started"
    error, debug = result["error"]
    assert error.matches(Gst.ResourceError.quark(), Gst.ResourceError.SETTINGS), error.message
    assert result["buffers"] == [], "something was captured"
    return error.message, debug


def test_no_target_fails_closed_and_says_how_to_name_one(pw_session):
    message, debug = settings_error("")
    assert "No target to capture" in message and "process-name" in message
    assert "mode=exclude-tree" in message  # the way to ask for everything but us
    assert "include-tree" in debug


def test_a_negative_pid_fails_rather_than_reading_as_none(pw_session):
    # "none" with exclude-tree would be every process but this one: the value must fail.
    src = Gst.ElementFactory.make("pipewireprocsrc", None)
    src.set_property("pid", -5)
    assert src.get_property("pid") == -5
    for props in ("pid=-5", "pid=-5 mode=exclude-tree"):
        message, debug = settings_error(props)
        assert "pid -5 is not a process id" in message, message
        assert "negative pid" in debug


def test_an_empty_process_name_fails_rather_than_reading_as_none(pw_session):
    src = Gst.ElementFactory.make("pipewireprocsrc", None)
    assert src.get_property("process-name") is None
    for props in ('process-name=""', 'process-name="" mode=exclude-tree'):
        message, _ = settings_error(props)
        assert "process-name is empty" in message, message
    # Back to unset (NULL), it is "no target" again: include-tree refuses that too.
    src.set_property("process-name", "")
    assert src.get_property("process-name") == ""
    src.set_property("process-name", None)
    assert src.get_property("process-name") is None


def test_a_pid_out_of_range_is_refused_where_it_is_given(pw_session):
    src = Gst.ElementFactory.make("pipewireprocsrc", "src")
    with pytest.raises((TypeError, OverflowError, ValueError)):
        src.set_property("pid", 2**40)
    assert src.get_property("pid") == 0
    with pytest.raises(Exception):
        Gst.parse_launch("pipewireprocsrc pid=99999999999 mode=exclude-tree ! fakesink")


@pytest.mark.parametrize("props, words", [
    ("pid=4242 process-name=firefox", ["only one"]),
    ("process-name=/usr/bin/firefox", ["path separator"]),
    ("pid=4242 on-target-exit=wait", ["process-name instead of pid"]),
    ("process-name=firefox mode=exclude-tree on-target-exit=wait", ["mode=include-tree"]),
    ("on-target-exit=wait", ["No target to capture"]),
])
def test_bad_combinations_say_what_to_change(pw_session, props, words):
    message, _ = settings_error(props)
    for w in words:
        assert w in message, message


def test_unknown_enum_values_are_refused_by_the_parser(pw_session):
    for props in ("on-target-exit=restart", "mode=everything"):
        with pytest.raises(Exception) as failure:
            Gst.parse_launch(f"pipewireprocsrc {props} ! fakesink")
        assert "could not set property" in str(failure.value).lower() or \
            "invalid" in str(failure.value).lower(), str(failure.value)


def test_the_blurbs_are_the_manual(pw_session):
    src = Gst.ElementFactory.make("pipewireprocsrc", None)
    blurb = {p.name: p.blurb for p in src.list_properties()}
    assert "exclude-tree" in blurb["mode"] and "fails to start" in blurb["mode"]
    assert "process-name" in blurb["on-target-exit"] and "procaudio-target" in blurb[
        "on-target-exit"]
    assert "timestamp/x-unix" in blurb["reference-timestamp"]
    assert src.get_property("on-target-exit").value_nick == "eos"
    assert src.get_property("reference-timestamp") is False
