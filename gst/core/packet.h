// SPDX-License-Identifier: LGPL-2.1-or-later
// One delivery of captured frames from the OS audio engine to a backend's capture thread.
#pragma once

#include <cstdint>

namespace procaudio {

enum PacketFlags : uint32_t {
  kPacketNone = 0,
  // The OS says these frames are silence; `data` may be null and is ignored.
  kPacketSilent = 1u << 0,
  // The OS lost data before this packet (a glitch, a device hiccup).
  kPacketDiscontinuity = 1u << 1,
  // `device_time_ns` is unreliable; the timeline estimates it instead.
  kPacketTimestampError = 1u << 2,
};

struct Packet {
  // Interleaved frames in the format the capture was started with.
  const void *data = nullptr;
  uint32_t frames = 0;
  uint32_t flags = kPacketNone;
  // Capture time of the first frame on the system's monotonic timeline, in ns
  // (QPC on Windows, CLOCK_MONOTONIC on Linux).
  uint64_t device_time_ns = 0;
  // When the backend received the packet, same timeline; feeds the latency statistics.
  uint64_t arrival_time_ns = 0;
};

}  // namespace procaudio
