// SPDX-License-Identifier: LGPL-2.1-or-later
// What the capture thread did, for diagnostics and the tests that prove it is driven by the
// audio engine's events. Plain values: no Windows header, so the backend's facade can hand
// them out.
#pragma once

#include <cstdint>

namespace procaudio {
namespace wasapi {

struct WakeCounts {
  uint64_t audio_event = 0;            // the audio engine signalled its event
  uint64_t timeout = 0;                // the wait timed out (the idle check)
  uint64_t packets_on_event = 0;       // packets read on audio-event wakes
  uint64_t packets_without_event = 0;  // packets read on the other wakes
};

}  // namespace wasapi
}  // namespace procaudio
