# SPDX-License-Identifier: LGPL-2.1-or-later
"""The exceptions the package raises: every GStreamer error of a capture reaches the caller as
one of these, with the element's message (what to do) and debug string (the OS detail)."""
from ._gst import GLib, Gst


class CaptureError(RuntimeError):
    """A capture failed. `message` is the element's message, meant for a person; `debug` the
    detail (HRESULT, errno, which check failed); `domain` and `code` the GStreamer error
    domain (e.g. "gst-resource-error-quark") and code, or None for an error found by the
    package itself before GStreamer saw the settings."""

    def __init__(self, message, debug=None, domain=None, code=None):
        super().__init__(message if not debug else f"{message} ({debug})")
        self.message = message
        self.debug = debug
        self.domain = domain
        self.code = code


class NotFound(CaptureError):
    """The target process (pid or process name) does not exist."""


class AccessDenied(CaptureError):
    """The OS refused to capture that process (GStreamer RESOURCE NOT_AUTHORIZED)."""


class Unavailable(CaptureError):
    """The audio service could not be reached, or was lost while capturing (GStreamer
    RESOURCE OPEN_READ, OPEN_READ_WRITE, OPEN_WRITE, READ, BUSY)."""


class InvalidSettings(CaptureError, ValueError):
    """The settings are wrong or contradict each other (GStreamer RESOURCE SETTINGS, or a
    value the package refused before starting). Also a ValueError."""


def _resource_classes():
    e = Gst.ResourceError
    return {
        e.NOT_FOUND: NotFound,
        e.NOT_AUTHORIZED: AccessDenied,
        e.SETTINGS: InvalidSettings,
        e.OPEN_READ: Unavailable,
        e.OPEN_READ_WRITE: Unavailable,
        e.OPEN_WRITE: Unavailable,
        e.READ: Unavailable,
        e.BUSY: Unavailable,
    }


def from_gerror(gerror, debug=None):
    """The CaptureError (subclass) for a GLib.Error from a GStreamer ERROR message."""
    cls = CaptureError
    # PyGObject gives GLib.Error.domain as the quark's string.
    if gerror.domain == GLib.quark_to_string(Gst.ResourceError.quark()):
        cls = _resource_classes().get(gerror.code, CaptureError)
    return cls(gerror.message, debug, gerror.domain, gerror.code)


def from_message(msg):
    """The CaptureError for a Gst.Message of type ERROR."""
    gerror, debug = msg.parse_error()
    return from_gerror(gerror, debug)

