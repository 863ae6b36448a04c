// SPDX-License-Identifier: LGPL-2.1-or-later
// Stamps the element's buffers per the timestamp contract: PTS is the running time of the
// device time at which a buffer's first frame was captured, derived from sample offsets
// relative to an anchor (offset A was captured at device time T) that changes only where the
// stream is discontinuous, so PTS(n+1) = PTS(n) + DURATION(n) exactly in between; OFFSET and
// OFFSET_END count frames; DISCONT and GAP come from the chunk. Optionally a
// GstReferenceTimestampMeta (timestamp/x-unix): the wall-clock time of the first frame.
#pragma once

#include <gst/gst.h>

#include <cstdint>
#include <optional>

#include "core/capture_engine.h"
#include "time_mapper.h"

namespace procaudio {

class BufferStamper {
 public:
  BufferStamper();
  ~BufferStamper();
  BufferStamper(const BufferStamper &) = delete;
  BufferStamper &operator=(const BufferStamper &) = delete;

  // A fresh stream: the next chunk sets a new anchor whatever it says.
  void reset() { anchor_.reset(); }

  // `element` gives the pipeline clock and base time; `rate` the negotiated rate.
  void stamp(GstElement *element, GstBuffer *buffer, const Chunk &chunk, uint32_t rate,
             bool reference_timestamp);

  // Device-timeline "now" (what the engine's times are on).
  uint64_t monotonic_now() const { return mapper_.monotonic_now(); }

 private:
  int64_t unix_minus_monotonic();
  static constexpr int64_t kTightBracketNs = 50'000;
  static constexpr int64_t kWallClockMovedNs = 1'000'000;

  TimeMapper mapper_;
  GstCaps *unix_caps_;  // timestamp/x-unix
  // The engine's anchor the stamps follow (offset captured at device time), and its running
  // time: fixed between discontinuities. None before a stream's first chunk.
  struct Anchor {
    uint64_t offset = 0;
    uint64_t time_ns = 0;
    GstClockTimeDiff running_time = 0;
  };
  std::optional<Anchor> anchor_;
  std::optional<int64_t> unix_minus_monotonic_;  // wall clock - device timeline, ns
};

}  // namespace procaudio
