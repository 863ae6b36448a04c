// SPDX-License-Identifier: LGPL-2.1-or-later
#include "tone_analysis.h"

#include <cmath>
#include <cstring>

namespace procaudio {
namespace wasapi {
namespace testing {

std::vector<float> channel_of(const void *data, size_t frames, const AudioFormat &format,
                              uint32_t channel) {
  std::vector<float> out(frames);
  const auto *bytes = static_cast<const uint8_t *>(data);
  const size_t stride = format.bytes_per_frame();
  const size_t at = size_t{channel} * bytes_per_sample(format.sample_format);
  for (size_t i = 0; i < frames; ++i) {
    if (format.sample_format == SampleFormat::kF32LE) {
      std::memcpy(&out[i], bytes + i * stride + at, sizeof(float));
    } else {
      int16_t v;
      std::memcpy(&v, bytes + i * stride + at, sizeof v);
      out[i] = static_cast<float>(v) / 32768.f;
    }
  }
  return out;
}

double level_dbfs(const std::vector<float> &x, double freq, uint32_t rate) {
  if (x.empty()) {
    return -300;
  }
  const double pi = 3.14159265358979323846;
  const size_t n = x.size();
  double re = 0, im = 0, wsum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double w =
        n > 1 ? 0.5 - 0.5 * std::cos(2 * pi * static_cast<double>(i) / static_cast<double>(n - 1))
              : 1.0;
    const double phase = 2 * pi * freq * static_cast<double>(i) / rate;
    re += x[i] * w * std::cos(phase);
    im -= x[i] * w * std::sin(phase);
    wsum += w;
  }
  const double amplitude = 2 * std::sqrt(re * re + im * im) / wsum;
  return 20 * std::log10(std::max(amplitude, 1e-15));
}

std::vector<float> clean_span(const std::vector<float> &x, double freq, double amplitude,
                              uint32_t rate, size_t margin, size_t *glitches) {
  const double pi = 3.14159265358979323846;
  const double step = 2 * std::sin(pi * freq / rate);
  // A sine's second difference is at most amplitude * step^2; 1e-3 covers rounding.
  const double bound = 1.5 * amplitude * step * step + 1e-3;
  size_t best_begin = 0, best_end = 0, begin = 0, count = 0;
  for (size_t i = 1; i + 1 < x.size(); ++i) {
    const double d2 = static_cast<double>(x[i + 1]) - 2.0 * x[i] + x[i - 1];
    if (std::fabs(d2) <= bound) {
      continue;
    }
    ++count;
    const size_t end = i > margin ? i - margin : 0;
    if (end > begin && end - begin > best_end - best_begin) {
      best_begin = begin;
      best_end = end;
    }
    begin = i + margin;
  }
  if (x.size() > begin && x.size() - begin > best_end - best_begin) {
    best_begin = begin;
    best_end = x.size();
  }
  if (glitches != nullptr) {
    *glitches = count;
  }
  return std::vector<float>(x.begin() + static_cast<std::ptrdiff_t>(best_begin),
                            x.begin() + static_cast<std::ptrdiff_t>(best_end));
}

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
