// SPDX-License-Identifier: LGPL-2.1-or-later
// The device timeline: CLOCK_MONOTONIC on Linux, QPC on Windows, both what
// std::chrono::steady_clock reads there, and what GStreamer's monotonic system clock reads.
#pragma once

#include <chrono>
#include <cstdint>

namespace procaudio {

inline uint64_t monotonic_now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// A wait's timeout in whole milliseconds, rounded up, that ends at `deadline_ns` (0 if it
// passed), at most `cap_ms`: for the waits that double as a sink's idle ticks.
inline uint32_t timeout_ms_until(uint64_t deadline_ns, uint64_t now_ns, uint32_t cap_ms) {
  if (deadline_ns <= now_ns) {
    return 0;
  }
  const uint64_t ms = (deadline_ns - now_ns + 999'999) / 1'000'000;
  return ms < cap_ms ? static_cast<uint32_t>(ms) : cap_ms;
}

}  // namespace procaudio
