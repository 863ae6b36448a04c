// SPDX-License-Identifier: LGPL-2.1-or-later
// What the Windows tests measure in captured audio: one channel as floats, and the level of a
// sine in it (a Hann-windowed single-bin DFT, as tests/python/wav_analysis.py measures).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/audio_format.h"

namespace procaudio {
namespace wasapi {
namespace testing {

// Channel `channel` of `frames` interleaved frames in `format`, scaled to [-1, 1].
std::vector<float> channel_of(const void *data, size_t frames, const AudioFormat &format,
                              uint32_t channel = 0);

// Amplitude of the sine at `freq` in `x` (sampled at `rate`), in dBFS; -300 for no samples.
double level_dbfs(const std::vector<float> &x, double freq, uint32_t rate);

// The longest part of `x` where it is a sine of `freq` Hz (amplitude at most `amplitude`) with
// no glitch: no second difference a sine cannot make, i.e. no dropout, repeat or phase jump,
// kept `margin` samples away from any. A glitch smears a tone's level over the spectrum, so a
// level is judged where there is none; `glitches`, when given, counts them.
std::vector<float> clean_span(const std::vector<float> &x, double freq, double amplitude,
                              uint32_t rate, size_t margin = 48, size_t *glitches = nullptr);

// The played level of a sine of amplitude 10^(dbfs/20), as level_dbfs() measures it.
constexpr double kLevelToleranceDb = 0.5;

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
