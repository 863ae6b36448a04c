// SPDX-License-Identifier: LGPL-2.1-or-later
#include "capture_error.h"

#include <cstring>

namespace procaudio {

std::string errno_text(int err) {
  if (err < 0) {
    err = -err;  // libspa and PipeWire return -errno
  }
  return "errno " + std::to_string(err) + " (" + std::strerror(err) + ")";
}

}  // namespace procaudio
