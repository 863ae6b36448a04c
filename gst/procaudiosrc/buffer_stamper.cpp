// SPDX-License-Identifier: LGPL-2.1-or-later
#include "buffer_stamper.h"

namespace procaudio {

BufferStamper::BufferStamper() : unix_caps_(gst_caps_new_empty_simple("timestamp/x-unix")) {}

BufferStamper::~BufferStamper() {
  gst_caps_unref(unix_caps_);
}

int64_t BufferStamper::unix_minus_monotonic() {
  // The wall clock read between two monotonic readings; only a tight bracket (no preemption
  // in between) is a measurement. The offset in use changes only when a measurement is
  // kWallClockMovedNs away from it: then the wall clock was stepped or slewed (NTP) that far,
  // and the stamps follow it. In between they move with the samples exactly, not with the
  // microseconds of jitter each reading has.
  const int64_t before = static_cast<int64_t>(mapper_.monotonic_now());
  const int64_t unix_now = g_get_real_time() * 1000;
  const int64_t after = static_cast<int64_t>(mapper_.monotonic_now());
  if (!unix_minus_monotonic_ || after - before <= kTightBracketNs) {
    const int64_t measured = unix_now - (before + (after - before) / 2);
    const int64_t moved = measured - unix_minus_monotonic_.value_or(measured);
    if (!unix_minus_monotonic_ || moved > kWallClockMovedNs || moved < -kWallClockMovedNs) {
      unix_minus_monotonic_ = measured;
    }
  }
  return *unix_minus_monotonic_;
}

void BufferStamper::stamp(GstElement *element, GstBuffer *buffer, const Chunk &chunk, uint32_t rate,
                          bool reference_timestamp) {
  if (!anchor_ || chunk.discont || chunk.anchor_offset != anchor_->offset ||
      chunk.anchor_time_ns != anchor_->time_ns) {
    GstClock *clock = gst_element_get_clock(element);
    mapper_.calibrate(clock);
    if (clock != nullptr) {
      gst_object_unref(clock);
    }
    anchor_ = Anchor{chunk.anchor_offset, chunk.anchor_time_ns,
                     mapper_.to_clock_time(chunk.anchor_time_ns) -
                         static_cast<GstClockTimeDiff>(gst_element_get_base_time(element))};
  }
  const gint r = static_cast<gint>(rate);
  const GstClockTimeDiff start =
      anchor_->running_time + static_cast<GstClockTimeDiff>(gst_util_uint64_scale_int(
                                  chunk.offset - chunk.anchor_offset, GST_SECOND, r));
  const GstClockTimeDiff end =
      anchor_->running_time +
      static_cast<GstClockTimeDiff>(gst_util_uint64_scale_int(
          chunk.offset + chunk.frames - chunk.anchor_offset, GST_SECOND, r));
  // Frames captured before PLAYING began clip to running time 0.
  const GstClockTime pts = start > 0 ? static_cast<GstClockTime>(start) : 0;
  GST_BUFFER_PTS(buffer) = pts;
  GST_BUFFER_DTS(buffer) = GST_CLOCK_TIME_NONE;
  GST_BUFFER_DURATION(buffer) = end > static_cast<GstClockTimeDiff>(pts) ? end - pts : 0;
  GST_BUFFER_OFFSET(buffer) = chunk.offset;
  GST_BUFFER_OFFSET_END(buffer) = chunk.offset + chunk.frames;
  if (chunk.discont) {
    GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);
  }
  if (chunk.gap) {
    GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_GAP);
  }
  if (reference_timestamp) {
    const uint64_t device_ns =
        anchor_->time_ns + gst_util_uint64_scale_int(chunk.offset - anchor_->offset, GST_SECOND, r);
    const GstClockTime unix_ns =
        static_cast<GstClockTime>(static_cast<int64_t>(device_ns) + unix_minus_monotonic());
    gst_buffer_add_reference_timestamp_meta(buffer, unix_caps_, unix_ns, GST_CLOCK_TIME_NONE);
  }
}

}  // namespace procaudio
