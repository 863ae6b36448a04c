// SPDX-License-Identifier: LGPL-2.1-or-later
// The tests' own signals: a tone file for paplay to play, and the level of a tone in what was
// captured. No PipeWire, no GStreamer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace procaudio {
namespace pwtest {

// Amplitude of `freq` in x[begin, begin + n), in dBFS (Hann-windowed Goertzel, 48 kHz).
double level_db(const std::vector<float> &x, size_t begin, size_t n, double freq);

// A WAV of `freq` at tone_player's amplitude, 48 kHz stereo float, `seconds` long: what paplay
// plays in the tests.
void write_tone_wav(const std::string &path, double freq, uint32_t seconds);

}  // namespace pwtest
}  // namespace procaudio
