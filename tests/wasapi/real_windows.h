// SPDX-License-Identifier: LGPL-2.1-or-later
// What the wasapi-real suite's scenarios share: the mode it runs in (real Windows, wine, or a
// Windows too old for process loopback), the played tones, the pipeline helpers, and the
// fixture whose target and decoy players play through the whole suite.
#pragma once

#include <windows.h>
// (windows.h first)
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <string>

#include "capture_run.h"
#include "real_report.h"
#include "tone_player.h"
#include "wasapi/process_util.h"

namespace procaudio {
namespace wasapi {
namespace testing {

constexpr double kTargetHz = 1000;
constexpr double kDecoyHz = 3000;
constexpr double kPlayedDb = -12;
constexpr double kLevelToleranceDbReal = 1.0;  // the engine's conversion, at most
constexpr double kSeparationDb = 40;           // what another process may leak, at least down

enum class Mode { kWindows, kWine, kTooOld };
Mode mode();
const char *mode_name();
WindowsVersion windows_version();

std::string pid_prop(uint32_t pid);

// Ends a run once `ms` of audio followed the first audible buffer.
RunStep after_sound_ms(uint32_t ms);

// The level in dBFS of `freq` in channel `ch`, over 1 s from 100 ms after `from` (default:
// the first sound).
double level_in(const CaptureRun &run, double freq, uint32_t ch = 0,
                GstClockTime from = GST_CLOCK_TIME_NONE);

// The scenario's report entry: pipeline, error, buffers, stats.
JsonObject scenario_json(const std::string &name, const CaptureRun &run);

// Off Windows 10 2004+: the run failed READY->PAUSED with the clean error, nothing captured.
void expect_clean_unavailable(const CaptureRun &run);

// Where every scenario's checks start. Off real Windows: the clean failure asserted, the
// scenario recorded, false (it ends there). On Windows: true if the run reached PLAYING with
// no error; else a failure, the scenario recorded, false.
bool ran_for_real(const CaptureRun &run, JsonObject &j);

// A tone of `freq` at kPlayedDb for `duration_ms`.
TonePlayer::Options tone(double freq, uint32_t duration_ms);
// What the default render endpoint is: its id, mix format, master volume and mute, for the
// report (the played levels are measured as played; a scaled or muted endpoint explains a
// level that is not).
JsonObject render_endpoint_json();

// Starts `player` and waits until it plays (fatal failure if not).
void start_player(TonePlayer &player, const TonePlayer::Options &options,
                  const std::wstring &exe = {});

class WasapiReal : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;

  static TonePlayer *target_;         // kTargetHz, until the suite ends
  static TonePlayer *decoy_;          // kDecoyHz, until the suite ends
  static std::string players_error_;  // why they could not be started, if so
};

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
