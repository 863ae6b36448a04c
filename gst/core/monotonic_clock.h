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

}  // namespace procaudio
