# SPDX-License-Identifier: LGPL-2.1-or-later
"""GStreamer through PyGObject: imported once, initialised once, and the capture element of
this platform. Nothing here is Linux-only, so the package runs unchanged on Windows.

When no plugin on GStreamer's plugin path provides the element, the copy shipped beside the
package (a wheel puts it in procaudio/gstreamer-1.0/) is loaded at import. One on the plugin
path wins: an installed or GST_PLUGIN_PATH plugin is never shadowed by the bundled one."""
import os
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

#: Where a plugin shipped with the package is looked for: procaudio/gstreamer-1.0/, named
#: like the directory GStreamer installs its own plugins in.
BUNDLED_PLUGIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gstreamer-1.0")

#: The plugin's file names there, as each toolchain builds it: MSVC gstprocaudio.dll, mingw
#: libgstprocaudio.dll; on Linux libgstprocaudio.so.
BUNDLED_PLUGIN_NAMES = (("gstprocaudio.dll", "libgstprocaudio.dll") if sys.platform == "win32"
                        else ("libgstprocaudio.so",))

# The variables GStreamer read its plugin path from (the *_1_0 one wins when set: the
# GStreamer wheels set it), as they were when it scanned.
_PATH_VARIABLES = ("GST_PLUGIN_PATH_1_0", "GST_PLUGIN_PATH", "GST_PLUGIN_SYSTEM_PATH_1_0",
                   "GST_PLUGIN_SYSTEM_PATH")


def _load_bundled_plugin():
    """Loads the bundled plugin unless the element is in the registry already. Returns (the
    path loaded or None, why the element is still missing or None, whether a file there
    failed to load)."""
    if Gst.ElementFactory.find(ELEMENT) is not None:
        return None, None, False
    for name in BUNDLED_PLUGIN_NAMES:
        path = os.path.join(BUNDLED_PLUGIN_DIR, name)
        if not os.path.isfile(path):
            continue
        # Gst.Plugin.load_file rather than Registry.scan_path: it loads this one file (not
        # whatever else lies in the directory), adds it to the registry, and says why a
        # load failed (a missing DLL, a GStreamer too old) instead of skipping the file.
        # No os.add_dll_directory on Windows: GLib loads the plugin by its full path with
        # LoadLibraryW, whose search for the plugin's own DLLs (GStreamer's, the Visual C++
        # runtime) goes by PATH, which the GStreamer wheels set; nothing else is bundled.
        try:
            Gst.Plugin.load_file(path)
        except GLib.Error as e:
            return None, f"{name} is there but failed to load: {e.message}", True
        if Gst.ElementFactory.find(ELEMENT) is None:
            return None, f"{name} loaded but has no {ELEMENT} (a build for another OS?)", False
        return path, None, False
    return None, f"no {' or '.join(BUNDLED_PLUGIN_NAMES)} there", False


#: The bundled plugin's path when it was loaded at import, else None (also when the plugin
#: path provided the element, and the bundled copy was left alone).
BUNDLED_PLUGIN, _BUNDLED_PROBLEM, _BUNDLED_FAILED = _load_bundled_plugin()
_SEARCHED_ENVIRONMENT = {k: os.environ.get(k) for k in _PATH_VARIABLES}


def missing_element_message():
    """What a Capture reports when no plugin provides ELEMENT: where it was looked for (the
    plugin path GStreamer scanned, the bundled directory) and what to do."""
    factory = Gst.ElementFactory.find(ELEMENT)
    if factory is not None:  # listed (a stale registry entry, say), but its module did not load
        plugin = factory.get_plugin()
        return (f"The GStreamer element {ELEMENT} is listed in the registry, but its plugin "
                f"{plugin.get_filename() if plugin else '(unknown file)'} did not load: see "
                "GStreamer's warning, or run gst-inspect-1.0 on that file.")
    env = _SEARCHED_ENVIRONMENT
    variable = ("GST_PLUGIN_PATH_1_0" if env["GST_PLUGIN_PATH_1_0"] is not None
                else "GST_PLUGIN_PATH")
    if env[variable] is None:
        user = f"{variable} (not set)"
    else:
        user = f"{variable}={env[variable]!r}"
        if variable == "GST_PLUGIN_PATH_1_0":
            user += " (which GStreamer reads instead of GST_PLUGIN_PATH)"
    system = env["GST_PLUGIN_SYSTEM_PATH_1_0"] or env["GST_PLUGIN_SYSTEM_PATH"]
    system = (f"the system plugin path {system!r}" if system
              else "GStreamer's own plugin directories")
    message = (f"The GStreamer element {ELEMENT} is not available. Looked in {user}, in "
               f"{system}, and in the package's own {BUNDLED_PLUGIN_DIR}: {_BUNDLED_PROBLEM}. "
               f"Install the procaudio plugin, add the directory that holds it to {variable}, "
               f"or put it in {BUNDLED_PLUGIN_DIR}.")
    if sys.platform == "win32" and _BUNDLED_FAILED:
        message += (" The DLLs it needs (GStreamer's, the Visual C++ runtime) must be on PATH: "
                    "the GStreamer wheels (pip install gstreamer-meta) put them there.")
    return message


def structure_to_dict(structure):
    """A Gst.Structure's fields as a plain dict (None gives an empty dict)."""
    if structure is None:
        return {}
    return {structure.nth_field_name(i): structure.get_value(structure.nth_field_name(i))
            for i in range(structure.n_fields())}
