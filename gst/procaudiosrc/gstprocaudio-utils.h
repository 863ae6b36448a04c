// SPDX-License-Identifier: LGPL-2.1-or-later
// What GstProcAudioSrc translates between the engine and GStreamer, kept out of the element:
// errors (ErrorKind -> domain and code, posted with the OS detail), the log bridge, the
// stats structure, caps (formats <-> GstCaps, fixation to a preferred format), and the
// target-state element message.
#pragma once

#include <gst/audio/audio.h>
#include <gst/gst.h>

#include <string>

#include "core/audio_format.h"
#include "core/capture_backend.h"
#include "core/capture_engine.h"
#include "core/capture_error.h"
#include "core/logger.h"

namespace procaudio {

struct GstErrorCode {
  GQuark domain;
  gint code;
};
// kInvalidSettings -> RESOURCE/SETTINGS, kNotFound -> NOT_FOUND, kAccessDenied ->
// NOT_AUTHORIZED, kUnsupportedOs/kBackendUnavailable/kTimeout -> OPEN_READ, kDeviceLost ->
// READ, kFormatRefused -> STREAM/FORMAT, anything else RESOURCE/FAILED.
GstErrorCode gst_error_code_of(ErrorKind kind);

// Posts `error` on the bus (message for a person, OS detail as the debug string) and logs
// it once into `category`.
void post_capture_error(GstElement *element, GstDebugCategory *category, const CaptureError &error,
                        const char *function, int line);

// The engine's and the backend's log lines, into the category `category_of(object)` gives
// at each line (during instance init GObject presents the base class, not the subclass
// whose category it should be).
Logger element_logger(GObject *object, GstDebugCategory *(*category_of)(GObject *));

// The "stats" property's value: a "procaudio-stats" structure of guint64 fields.
GstStructure *stats_structure(const EngineStats &stats);

// The pad template's caps for `formats`: one structure per sample format.
GstCaps *caps_for(const FormatCaps &formats);
// Fixates `caps` (taking it) to the format nearest `preferred`.
GstCaps *fixate_to(GstCaps *caps, const AudioFormat &preferred);
// The engine's format for negotiated caps; false if they are not F32LE/S16LE interleaved.
bool audio_format_of(const GstAudioInfo &info, AudioFormat &format);

// The element message "procaudio-target": state (waiting, capturing, exited), pid,
// process-name, streams, and offset: the buffer offset (in frames) from which the state holds.
GstMessage *target_message(GstObject *src, const TargetState &state, uint64_t offset,
                           const std::string &process_name);

}  // namespace procaudio
