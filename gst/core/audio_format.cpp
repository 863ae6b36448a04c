// SPDX-License-Identifier: LGPL-2.1-or-later
#include "audio_format.h"

#include <algorithm>

namespace procaudio {

bool FormatCaps::accepts(const AudioFormat &format) const {
  const bool sample_ok = std::find(sample_formats.begin(), sample_formats.end(),
                                   format.sample_format) != sample_formats.end();
  const bool rate_ok = rates.empty()
                           ? format.rate >= rate_min && format.rate <= rate_max
                           : std::find(rates.begin(), rates.end(), format.rate) != rates.end();
  const bool channels_ok = format.channels >= channels_min && format.channels <= channels_max;
  return sample_ok && rate_ok && channels_ok;
}

}  // namespace procaudio
