// SPDX-License-Identifier: LGPL-2.1-or-later
#include "real_windows.h"

#include <audioclient.h>
#include <endpointvolume.h>
#include <wrl/client.h>

#include "test_support.h"
#include "tone_analysis.h"
#include "wasapi/com_thread.h"
#include "wasapi/endpoints.h"
#include "wasapi/hresult.h"
#include "wasapi/win_string.h"

namespace procaudio {
namespace wasapi {
namespace testing {

WindowsVersion windows_version() {
  WindowsVersion v;
  query_windows_version(v);
  return v;
}

Mode mode() {
  static const Mode m = [] {
    if (running_under_wine()) {
      return Mode::kWine;
    }
    return check_process_loopback_supported(windows_version()) ? Mode::kTooOld : Mode::kWindows;
  }();
  return m;
}

const char *mode_name() {
  switch (mode()) {
    case Mode::kWindows:
      return "windows";
    case Mode::kWine:
      return "wine";
    case Mode::kTooOld:
      return "windows-too-old";
  }
  return "?";
}

std::string pid_prop(uint32_t pid) {
  return "pid=" + std::to_string(pid);
}

RunStep after_sound_ms(uint32_t ms) {
  return [ms](CaptureRun &run, GstElement *) {
    GstClockTime first = GST_CLOCK_TIME_NONE;
    for (const auto &b : run.buffers) {
      if (!b.gap && !b.silent && !GST_CLOCK_TIME_IS_VALID(first)) {
        first = b.pts;
      }
      if (GST_CLOCK_TIME_IS_VALID(first) && b.pts >= first + ms * GST_MSECOND) {
        return true;
      }
    }
    return false;
  };
}

double level_in(const CaptureRun &run, double freq, uint32_t ch, GstClockTime from) {
  const GstClockTime start = GST_CLOCK_TIME_IS_VALID(from) ? from : run.first_sound();
  if (!GST_CLOCK_TIME_IS_VALID(start)) {
    return -300;
  }
  return level_dbfs(run.samples_from(ch, start + 100 * GST_MSECOND, run.format.rate), freq,
                    run.format.rate);
}

JsonObject scenario_json(const std::string &name, const CaptureRun &run) {
  JsonObject j;
  j.set("name", name).set("pipeline", run.description).set("reached_playing", run.reached_playing);
  if (run.error.posted) {
    j.set("error", JsonObject()
                       .set("domain", g_quark_to_string(run.error.domain))
                       .set("code", static_cast<int64_t>(run.error.code))
                       .set("message", run.error.message)
                       .set("debug", run.error.debug));
    RealReport::get().note_hresults(run.error.debug);
  }
  j.set("buffers", static_cast<uint64_t>(run.buffers.size()));
  if (!run.stats_text.empty()) {
    j.set("stats", run.stats_text);
  }
  return j;
}

void expect_clean_unavailable(const CaptureRun &run) {
  EXPECT_FALSE(run.started) << run.description;
  ASSERT_TRUE(run.error.posted) << run.description << ": no error on the bus";
  EXPECT_EQ(run.error.domain, GST_RESOURCE_ERROR) << run.error.message;
  EXPECT_EQ(run.error.code, GST_RESOURCE_ERROR_OPEN_READ) << run.error.message;
  if (mode() == Mode::kWine) {
    EXPECT_NE(run.error.message.find("process loopback unavailable"), std::string::npos)
        << run.error.message;
    EXPECT_NE(run.error.debug.find("0x80070002"), std::string::npos) << run.error.debug;
  } else {
    EXPECT_NE(run.error.message.find("needs Windows 10 version 2004"), std::string::npos)
        << run.error.message;
  }
  EXPECT_TRUE(run.buffers.empty());
}

bool ran_for_real(const CaptureRun &run, JsonObject &j) {
  if (mode() != Mode::kWindows) {
    expect_clean_unavailable(run);
    RealReport::get().add_scenario(j);
    return false;
  }
  if (!run.reached_playing || run.error.posted) {
    ADD_FAILURE() << run.description << ": " << run.error.message << " / " << run.error.debug;
    RealReport::get().add_scenario(j);
    return false;
  }
  return true;
}

TonePlayer::Options tone(double freq, uint32_t duration_ms) {
  TonePlayer::Options o;
  o.freq = freq;
  o.level_dbfs = kPlayedDb;
  o.duration_ms = duration_ms;
  o.lifetime_ms = duration_ms + 60000;
  return o;
}

void start_player(TonePlayer &player, const TonePlayer::Options &options, const std::wstring &exe) {
  std::string error;
  ASSERT_TRUE(player.start(options, error, exe)) << error;
  TonePlayer::Event started;
  ASSERT_TRUE(player.wait_event("started", started))
      << "the tone player did not start playing (is there an audio output device?)";
}

JsonObject render_endpoint_json() {
  JsonObject j;
  run_on_mta_thread([&j] {
    using Microsoft::WRL::ComPtr;
    ComPtr<IMMDevice> device;
    if (CaptureError error = default_endpoint(eRender, device)) {
      j.set("error", error.message + " (" + error.detail + ")");
      return CaptureError{};
    }
    LPWSTR id = nullptr;
    if (SUCCEEDED(device->GetId(&id)) && id != nullptr) {
      j.set("id", to_utf8(id));
      CoTaskMemFree(id);
    }
    ComPtr<IAudioClient> client;
    WAVEFORMATEX *mix = nullptr;
    if (SUCCEEDED(device->Activate(__uuidof(IAudioClient), CLSCTX_ALL, nullptr,
                                   reinterpret_cast<void **>(client.GetAddressOf()))) &&
        SUCCEEDED(client->GetMixFormat(&mix)) && mix != nullptr) {
      j.set("mix_rate", static_cast<uint64_t>(mix->nSamplesPerSec))
          .set("mix_channels", static_cast<uint64_t>(mix->nChannels))
          .set("mix_bits", static_cast<uint64_t>(mix->wBitsPerSample));
      CoTaskMemFree(mix);
    }
    ComPtr<IAudioEndpointVolume> volume;
    float scalar = -1;
    BOOL mute = FALSE;
    HRESULT hr = device->Activate(__uuidof(IAudioEndpointVolume), CLSCTX_ALL, nullptr,
                                  reinterpret_cast<void **>(volume.GetAddressOf()));
    if (SUCCEEDED(hr) && SUCCEEDED(hr = volume->GetMasterVolumeLevelScalar(&scalar)) &&
        SUCCEEDED(hr = volume->GetMute(&mute))) {
      j.set("master_volume", static_cast<double>(scalar)).set("muted", mute != FALSE);
    } else {
      j.set("volume_error", format_hresult(hr));
    }
    return CaptureError{};
  });
  return j;
}

TonePlayer *WasapiReal::target_ = nullptr;
TonePlayer *WasapiReal::decoy_ = nullptr;
std::string WasapiReal::players_error_;

void WasapiReal::SetUpTestSuite() {
  RealReport::get().header().set("render_endpoint", render_endpoint_json());
  // They play until the suite ends (an hour at most), however long its scenarios take.
  target_ = new TonePlayer();
  decoy_ = new TonePlayer();
  std::string error;
  if (!target_->start(tone(kTargetHz, 3'600'000), error) ||
      !decoy_->start(tone(kDecoyHz, 3'600'000), error)) {
    players_error_ = error;
  }
}

void WasapiReal::TearDownTestSuite() {
  delete target_;
  delete decoy_;
  target_ = decoy_ = nullptr;
}

void WasapiReal::SetUp() {
  ASSERT_EQ(players_error_, "") << "the tone players could not be started";
  TonePlayer::Event started;
  ASSERT_TRUE(target_->wait_event("started", started)) << "the target player does not play";
  ASSERT_TRUE(decoy_->wait_event("started", started)) << "the decoy player does not play";
  // Still playing: a player that died would make every later scenario fail for its reason.
  ASSERT_EQ(WaitForSingleObject(target_->handle(), 0), static_cast<DWORD>(WAIT_TIMEOUT))
      << "the target player exited";
  ASSERT_EQ(WaitForSingleObject(decoy_->handle(), 0), static_cast<DWORD>(WAIT_TIMEOUT))
      << "the decoy player exited";
}

}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
