// SPDX-License-Identifier: LGPL-2.1-or-later
// A failure a backend reports, in terms the element can map onto GStreamer error domains.
#pragma once

#include <string>

namespace procaudio {

enum class ErrorKind {
  kNone,
  kInvalidSettings,     // property values that cannot work together
  kNotFound,            // no such process
  kAccessDenied,        // the OS refused access to the process or its audio
  kUnsupportedOs,       // the OS is too old for process capture
  kBackendUnavailable,  // the audio service is not running or not reachable
  kDeviceLost,          // the audio device or the service went away mid-capture
  kFormatRefused,       // the OS will not capture in the negotiated format
  kTimeout,             // the OS did not answer in time
  kFailed,              // anything else
};

struct CaptureError {
  ErrorKind kind = ErrorKind::kNone;
  // For a person: what failed and what to do about it.
  std::string message;
  // For a developer: the OS detail (HRESULT in hex with its text, errno and strerror, ...).
  std::string detail;

  explicit operator bool() const { return kind != ErrorKind::kNone; }
};

// "errno 2 (No such file or directory)", for a detail; a negative `err` (-errno, as PipeWire
// returns it) is read as its positive.
std::string errno_text(int err);

}  // namespace procaudio
