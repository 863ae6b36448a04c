"""GStreamer through PyGObject: imported once, initialised once, and the capture element of
this platform. Nothing here is Linux-only, so the package runs unchanged on Windows."""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import GLib, Gst, GstApp  # noqa: E402,F401 (AppSink methods need GstApp)

# Gst.init is idempotent; an application that already initialised GStreamer keeps its options.
if not Gst.is_initialized():
    Gst.init(None)

#: The element that captures one application's audio on this platform.
ELEMENT = "wasapiprocsrc" if sys.platform == "win32" else "pipewireprocsrc"

#: The device class under which the providers list applications.
DEVICE_CLASS = "Audio/Source/Application"


def structure_to_dict(structure):
    """A Gst.Structure's fields as a plain dict (None gives an empty dict)."""
    if structure is None:
        return {}
    return {structure.nth_field_name(i): structure.get_value(structure.nth_field_name(i))
            for i in range(structure.n_fields())}
