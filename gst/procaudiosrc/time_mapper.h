// SPDX-License-Identifier: LGPL-2.1-or-later
// Maps device times (the system's monotonic timeline) onto a pipeline clock.
//
// When the pipeline clock is GStreamer's monotonic system clock the device timeline is its
// internal time, so the mapping is the clock's own calibration (the identity unless the clock
// is slaved). Any other clock is calibrated against the monotonic timeline by reading both
// back to back; the element recalibrates only where the stream is discontinuous anyway, so
// that timestamps stay exactly continuous in between.
#pragma once

#include <gst/gst.h>

#include <cstdint>

namespace procaudio {

class TimeMapper {
 public:
  TimeMapper();
  ~TimeMapper();
  TimeMapper(const TimeMapper &) = delete;
  TimeMapper &operator=(const TimeMapper &) = delete;

  // Chooses the mapping for `clock` (may be null: then device time is used as is).
  void calibrate(GstClock *clock);
  // Pipeline-clock time of a device time.
  GstClockTimeDiff to_clock_time(uint64_t device_ns) const;
  // Device-timeline "now".
  uint64_t monotonic_now() const;

 private:
  GstClock *monotonic_;  // a private GstSystemClock of type MONOTONIC
  GstClock *clock_ = nullptr;
  bool exact_ = true;
  GstClockTimeDiff offset_ = 0;
  // The system clock's calibration (internal, external, rate), applied without the clamp to
  // "never before the last reading" that gst_clock_adjust_unlocked() adds.
  GstClockTime cal_internal_ = 0, cal_external_ = 0, cal_num_ = 1, cal_denom_ = 1;
};

}  // namespace procaudio
