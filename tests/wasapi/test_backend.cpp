// SPDX-License-Identifier: LGPL-2.1-or-later
// WasapiBackend against COM fakes of the process-loopback client: the formats it declares
// and prefers, fresh clients for new formats, targets (none, include, exclude, by name, the
// process a name lookup opened), the OS check, activation errors and timeouts.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "backend_fixture.h"
#include "wasapi/audio_client_activator.h"

namespace procaudio {
namespace wasapi {
namespace {

using std::chrono::milliseconds;
using testing::BackendTest;
using testing::ChildProcess;
using testing::config_of;
using testing::RecordingSink;

TEST_F(BackendTest, PrefersTheDefaultRenderEndpointsMixRate) {
  // Capturing at the rate the audio engine mixes at spares it a resampler (reported to ring,
  // and to crackle after a minute, at other rates).
  struct Case {
    uint32_t mix_rate;
    bool query_fails;
    uint32_t preferred;
  } cases[] = {{44100, false, 44100},
               {48000, false, 48000},
               {96000, false, 48000},
               {32000, false, 48000},
               {44100, true, 48000}};
  for (const Case &c : cases) {
    mix_rate_ = c.mix_rate;
    mix_rate_error_ = c.query_fails ? CaptureError{ErrorKind::kBackendUnavailable, "no device",
                                                   "GetDefaultAudioEndpoint failed"}
                                    : CaptureError{};
    make_backend(10);
    ASSERT_FALSE(backend_->open(testing::everything_but_us()));
    const AudioFormat f = backend_->preferred_format();
    EXPECT_EQ(f.rate, c.preferred) << c.mix_rate;
    EXPECT_EQ(f.sample_format, SampleFormat::kF32LE);
    EXPECT_EQ(f.channels, 2u);
    EXPECT_TRUE(WasapiBackend::supported_formats().accepts(f));
    backend_->close();
  }
}

TEST_F(BackendTest, DeclaresTheSafeFormats) {
  const FormatCaps caps = WasapiBackend::supported_formats();
  EXPECT_TRUE(caps.accepts({SampleFormat::kF32LE, 48000, 2}));
  EXPECT_TRUE(caps.accepts({SampleFormat::kS16LE, 44100, 1}));
  EXPECT_FALSE(caps.accepts({SampleFormat::kF32LE, 16000, 1}));
  EXPECT_FALSE(caps.accepts({SampleFormat::kF32LE, 48000, 6}));
  EXPECT_EQ(backend_->latency_ns(), 10'000'000u);
  EXPECT_EQ(backend_->idle_margin_ns(), 30'000'000u);
}

TEST_F(BackendTest, NewFormatTakesAFreshClient) {
  RecordingSink &sink = new_sink(8);
  auto stream = start_default(sink);
  ASSERT_TRUE(stream);
  backend_->stop();
  RecordingSink &sink2 = new_sink(4);
  ASSERT_FALSE(backend_->start(config_of(SampleFormat::kS16LE, 48000, 2), sink2));
  EXPECT_EQ(activator_->activations(), 2u);
  EXPECT_EQ(stream->counters().initialize, 1);
  EXPECT_EQ(activator_->stream(1)->counters().initialize, 1);
}

TEST_F(BackendTest, FormatOutsideTheCapsIsRefusedBeforeWindowsSeesIt) {
  ASSERT_FALSE(backend_->open(testing::everything_but_us()));
  RecordingSink &sink = new_sink(2);
  const CaptureError error = backend_->start(config_of(SampleFormat::kS16LE, 16000, 1), sink);
  EXPECT_EQ(error.kind, ErrorKind::kFormatRefused);
  EXPECT_EQ(activator_->stream(0)->counters().initialize, 0);
}

TEST_F(BackendTest, NoTargetExcludesThisProcess) {
  ASSERT_FALSE(backend_->open(testing::everything_but_us()));
  const auto requests = activator_->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].pid, GetCurrentProcessId());
  EXPECT_FALSE(requests[0].include_tree);
  EXPECT_EQ(backend_->resolved_pid(), 0u);
}

TEST_F(BackendTest, ExcludeTreeOfATarget) {
  TargetSpec target;
  target.pid = GetCurrentProcessId();
  target.mode = TargetMode::kExcludeTree;
  ASSERT_FALSE(backend_->open(target));
  const auto requests = activator_->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].pid, GetCurrentProcessId());
  EXPECT_FALSE(requests[0].include_tree);
  EXPECT_EQ(backend_->resolved_pid(), GetCurrentProcessId());
}

TEST_F(BackendTest, ProcessNameIsResolved) {
  const testing::ChildCopy exe;
  ASSERT_FALSE(exe.path().empty());
  ChildProcess child;
  std::string why;
  ASSERT_TRUE(child.start(30000, why, exe.path())) << why;
  TargetSpec target;
  target.process_name = exe.stem();
  ASSERT_FALSE(backend_->open(target));
  EXPECT_EQ(backend_->resolved_pid(), child.pid());
  EXPECT_EQ(activator_->requests().at(0).pid, child.pid());
  backend_->close();
}

TEST_F(BackendTest, NoSuchProcess) {
  TargetSpec target;
  target.pid = testing::unused_pid();
  const CaptureError error = backend_->open(target);
  EXPECT_EQ(error.kind, ErrorKind::kNotFound);
  EXPECT_NE(error.message.find("no such process"), std::string::npos) << error.message;
  EXPECT_EQ(activator_->activations(), 0u);

  TargetSpec named;
  named.process_name = "no-such-program-procaudio";
  EXPECT_EQ(backend_->open(named).kind, ErrorKind::kNotFound);
}

TEST_F(BackendTest, WindowsOlderThan2004IsRefusedByName) {
  version_ = {10, 0, 18363};  // 1909
  const CaptureError error = backend_->open(testing::everything_but_us());
  EXPECT_EQ(error.kind, ErrorKind::kUnsupportedOs);
  EXPECT_NE(error.message.find("Windows 10 version 2004 (build 19041)"), std::string::npos)
      << error.message;
  EXPECT_EQ(activator_->activations(), 0u);
}

TEST_F(BackendTest, ActivationErrorFailsOpen) {
  activator_->next_error = {ErrorKind::kBackendUnavailable, "process loopback unavailable",
                            "activate result 0x80070002"};
  const CaptureError error = backend_->open(testing::everything_but_us());
  EXPECT_EQ(error.kind, ErrorKind::kBackendUnavailable);
  EXPECT_EQ(backend_->resolved_pid(), 0u);
}

TEST(BackendActivation, TimeoutFailsOpenWithATimeoutError) {
  // The real activator with an ActivateAudioInterfaceAsync that never completes.
  std::vector<Microsoft::WRL::ComPtr<IActivateAudioInterfaceCompletionHandler>> held;
  auto never = [&held](LPCWSTR, REFIID, PROPVARIANT *,
                       IActivateAudioInterfaceCompletionHandler *handler,
                       IActivateAudioInterfaceAsyncOperation **operation) -> HRESULT {
    held.emplace_back(handler);
    *operation = nullptr;
    return S_OK;
  };
  WasapiBackendOptions options;
  options.activator = std::make_shared<ProcessLoopbackActivator>(Logger{}, 250, never);
  options.query_version = [](WindowsVersion &v) {
    v = {10, 0, 19045};
    return true;
  };
  WasapiBackend backend({}, options);
  const auto t0 = std::chrono::steady_clock::now();
  const CaptureError error = backend.open(testing::everything_but_us());
  EXPECT_EQ(error.kind, ErrorKind::kTimeout);
  EXPECT_NE(error.message.find("250 ms"), std::string::npos) << error.message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(5000));
  EXPECT_EQ(held.size(), 1u);
}

}  // namespace
}  // namespace wasapi
}  // namespace procaudio
