// SPDX-License-Identifier: LGPL-2.1-or-later
// Sample formats the engine moves around, and the sets of them a backend can capture.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace procaudio {

// Interleaved little-endian PCM; the only layouts the elements negotiate.
enum class SampleFormat : uint8_t { kF32LE, kS16LE };

inline constexpr uint32_t bytes_per_sample(SampleFormat format) {
  return format == SampleFormat::kF32LE ? 4u : 2u;
}

// GStreamer's name for it, as in audio/x-raw caps.
inline constexpr const char *sample_format_name(SampleFormat format) {
  return format == SampleFormat::kF32LE ? "F32LE" : "S16LE";
}

struct AudioFormat {
  SampleFormat sample_format = SampleFormat::kF32LE;
  uint32_t rate = 48000;
  uint32_t channels = 2;

  uint32_t bytes_per_frame() const { return bytes_per_sample(sample_format) * channels; }
  bool operator==(const AudioFormat &o) const {
    return sample_format == o.sample_format && rate == o.rate && channels == o.channels;
  }
  bool operator!=(const AudioFormat &o) const { return !(*this == o); }
};

// What a backend can deliver: every combination of the listed sample formats, rates and
// channel counts. An empty `rates` list means any rate in [rate_min, rate_max].
struct FormatCaps {
  std::vector<SampleFormat> sample_formats{SampleFormat::kF32LE, SampleFormat::kS16LE};
  std::vector<uint32_t> rates;
  uint32_t rate_min = 1;
  uint32_t rate_max = 384000;
  uint32_t channels_min = 1;
  uint32_t channels_max = 2;

  bool accepts(const AudioFormat &format) const;
};

}  // namespace procaudio
