// SPDX-License-Identifier: LGPL-2.1-or-later
#include "time_mapper.h"

namespace procaudio {

namespace {

bool is_monotonic_system_clock(GstClock *clock) {
  if (!GST_IS_SYSTEM_CLOCK(clock)) {
    return false;
  }
  GstClockType type = GST_CLOCK_TYPE_REALTIME;
  g_object_get(clock, "clock-type", &type, nullptr);
  return type == GST_CLOCK_TYPE_MONOTONIC;
}

}  // namespace

TimeMapper::TimeMapper()
    : monotonic_(
          GST_CLOCK(g_object_new(GST_TYPE_SYSTEM_CLOCK, "clock-type", GST_CLOCK_TYPE_MONOTONIC,
                                 "name", "procaudio-monotonic", nullptr))) {
  gst_object_ref_sink(monotonic_);
}

TimeMapper::~TimeMapper() {
  gst_clear_object(&clock_);
  gst_object_unref(monotonic_);
}

uint64_t TimeMapper::monotonic_now() const {
  return gst_clock_get_internal_time(monotonic_);
}

void TimeMapper::calibrate(GstClock *clock) {
  gst_object_replace(reinterpret_cast<GstObject **>(&clock_), GST_OBJECT_CAST(clock));
  exact_ = clock == nullptr || is_monotonic_system_clock(clock);
  if (exact_) {
    offset_ = 0;
    if (clock != nullptr) {
      gst_clock_get_calibration(clock, &cal_internal_, &cal_external_, &cal_num_, &cal_denom_);
    }
    return;
  }
  // Bracket the pipeline clock's reading between two monotonic ones; take the middle.
  const GstClockTime before = monotonic_now();
  const GstClockTime pipeline = gst_clock_get_time(clock);
  const GstClockTime after = monotonic_now();
  offset_ = GST_CLOCK_DIFF(before + (after - before) / 2, pipeline);
}

GstClockTimeDiff TimeMapper::to_clock_time(uint64_t device_ns) const {
  if (exact_ && clock_ != nullptr) {
    return static_cast<GstClockTimeDiff>(gst_clock_adjust_with_calibration(
        nullptr, device_ns, cal_internal_, cal_external_, cal_num_, cal_denom_));
  }
  return static_cast<GstClockTimeDiff>(device_ns) + offset_;
}

}  // namespace procaudio
