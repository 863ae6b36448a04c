// SPDX-License-Identifier: LGPL-2.1-or-later
// The Linux side of the tests that run under wine against a real audio stack: requests to
// tests/wasapi/linux_side.py, which started this program inside a private PipeWire session
// (with a PulseAudio server that wine's winepulse talks to) and answers on stdin.
#pragma once

#include <cstdint>
#include <string>

namespace procaudio {
namespace wasapi {
namespace testing {

class LinuxSide {
 public:
  // True when this program runs under linux_side.py (PROCAUDIO_LINUX_SIDE=1).
  static bool available();
  // What to do when it is not: how to run the tests.
  static const char *how_to_run();

  // One request ("play 440 3 -6"); the answer's text after "@@ok ", or false with `error`.
  static bool request(const std::string &line, std::string &answer, std::string &error);

  // A Linux process (paplay) playing a tone into the session's null sink; its pid, 0 on error.
  static uint32_t play(double freq, double seconds, double dbfs, std::string &error);
  static bool stop(uint32_t pid, std::string &error);
  // The session's PulseAudio server killed (SIGKILL), and started again on the same socket.
  static bool kill_pulse(std::string &error);
  static bool restart_pulse(std::string &error);
  // The null sink's rate as the PulseAudio server reports it, 0 on error.
  static uint32_t sink_rate(std::string &error);

  // `name` captured with pipewireprocsrc process-name=<name> for `seconds` on the Linux side.
  struct Capture {
    double level_dbfs = -300;  // at `freq`
    double other_dbfs = -300;  // at `other`
    double peak_dbfs = -300;   // the loudest sample
    double audible = 0;        // the fraction of samples that are not silence
    double dominant_hz = 0;
    uint64_t frames = 0;
  };
  static bool capture(const std::string &name, double seconds, double freq, double other,
                      Capture &result, std::string &error);
};

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
