// SPDX-License-Identifier: LGPL-2.1-or-later
#include "pw_signal.h"

#include <cmath>
#include <fstream>

#include "pw_fixture.h"

namespace procaudio {
namespace pwtest {

void write_tone_wav(const std::string &path, double freq, uint32_t seconds) {
  const uint32_t rate = 48000, channels = 2, frames = rate * seconds;
  const uint32_t data_bytes = frames * channels * 4;
  std::ofstream out(path, std::ios::binary);
  auto u32 = [&](uint32_t v) { out.write(reinterpret_cast<const char *>(&v), 4); };
  auto u16 = [&](uint16_t v) { out.write(reinterpret_cast<const char *>(&v), 2); };
  out.write("RIFF", 4);
  u32(36 + data_bytes);
  out.write("WAVEfmt ", 8);
  u32(16);
  u16(3);  // IEEE float
  u16(channels);
  u32(rate);
  u32(rate * channels * 4);
  u16(channels * 4);
  u16(32);
  out.write("data", 4);
  u32(data_bytes);
  std::vector<float> block(static_cast<size_t>(rate) * channels);
  for (uint32_t second = 0; second < seconds; ++second) {
    for (uint32_t i = 0; i < rate; ++i) {
      const float v = static_cast<float>(kPlayedAmplitude * std::sin(2 * M_PI * freq * i / rate));
      block[i * 2] = block[i * 2 + 1] = v;
    }
    out.write(reinterpret_cast<const char *>(block.data()), block.size() * 4);
  }
}

double level_db(const std::vector<float> &x, size_t begin, size_t n, double freq) {
  double re = 0, im = 0, wsum = 0;
  for (size_t i = 0; i < n && begin + i < x.size(); ++i) {
    const double w = 0.5 - 0.5 * std::cos(2 * M_PI * i / (n - 1));
    re += w * x[begin + i] * std::cos(2 * M_PI * freq * i / 48000);
    im -= w * x[begin + i] * std::sin(2 * M_PI * freq * i / 48000);
    wsum += w;
  }
  return db(2 * std::hypot(re, im) / wsum);
}

}  // namespace pwtest
}  // namespace procaudio
