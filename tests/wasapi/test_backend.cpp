// WasapiBackend and its capture thread against COM fakes of the process-loopback client
// (wine has no process loopback): Initialize parameters, QPC device times, packet flags,
// bursts, idle stretches, device loss, target exit through a real process's handle,
// Stop/Start without Reset, the OS check, activation errors and timeouts.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>

#include "com_fakes.h"
#include "test_support.h"
#include "wasapi/audio_client_activator.h"
#include "wasapi/process_util.h"
#include "wasapi/wasapi_backend.h"

namespace procaudio {
namespace wasapi {
namespace {

using std::chrono::milliseconds;
using testing::ChildProcess;
using testing::FakeActivator;
using testing::FakePacket;
using testing::FakeStream;
using testing::RecordingSink;
using Kind = RecordingSink::Kind;

constexpr DWORD kDiscontinuity = AUDCLNT_BUFFERFLAGS_DATA_DISCONTINUITY;
constexpr DWORD kSilent = AUDCLNT_BUFFERFLAGS_SILENT;
constexpr DWORD kTimestampError = AUDCLNT_BUFFERFLAGS_TIMESTAMP_ERROR;

// "Now" in QPC units of 100 ns, as the audio engine stamps packets.
uint64_t qpc_now() {
  return monotonic_now_ns() / 100;
}

CaptureConfig config_of(SampleFormat sf, uint32_t rate, uint32_t channels) {
  CaptureConfig config;
  config.format = {sf, rate, channels};
  config.latency_ns = 10'000'000;
  config.buffer_ns = 200'000'000;
  return config;
}

// A packet of `frames` F32 stereo frames whose samples encode their index from `first`.
FakePacket packet(uint32_t frames, uint64_t qpc, DWORD flags = 0, float first = 0.f) {
  FakePacket p;
  p.frames = frames;
  p.flags = flags;
  p.qpc_position = qpc;
  p.data.resize(size_t{frames} * 8);
  float *samples = reinterpret_cast<float *>(p.data.data());
  for (uint32_t i = 0; i < frames * 2; ++i) {
    samples[i] = first + static_cast<float>(i);
  }
  return p;
}

class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override { make_backend(10); }
  void TearDown() override { backend_->close(); }

  void make_backend(uint32_t wake_interval_ms) {
    if (backend_) {
      backend_->close();
    }
    activator_ = std::make_shared<FakeActivator>();
    WasapiBackendOptions options;
    options.wake_interval_ms = wake_interval_ms;
    options.activator = activator_;
    options.query_version = [this](WindowsVersion &v) {
      v = version_;
      return true;
    };
    backend_.reset(new WasapiBackend({}, options));
  }

  // open() without a target, start() in F32LE 48 kHz stereo; the fake stream.
  std::shared_ptr<FakeStream> start_default(RecordingSink &sink, TargetSpec target = {}) {
    const CaptureError open_error = backend_->open(target);
    EXPECT_FALSE(open_error) << open_error.message << " / " << open_error.detail;
    const CaptureError start_error =
        backend_->start(config_of(SampleFormat::kF32LE, 48000, 2), sink);
    EXPECT_FALSE(start_error) << start_error.message << " / " << start_error.detail;
    const size_t n = activator_->activations();
    return n > 0 && !open_error && !start_error ? activator_->stream(n - 1) : nullptr;
  }

  WindowsVersion version_{10, 0, 19045};
  std::shared_ptr<FakeActivator> activator_;
  std::unique_ptr<WasapiBackend> backend_;
};

TEST_F(BackendTest, DeclaresTheSafeFormats) {
  const FormatCaps caps = backend_->formats();
  EXPECT_TRUE(caps.accepts({SampleFormat::kF32LE, 48000, 2}));
  EXPECT_TRUE(caps.accepts({SampleFormat::kS16LE, 44100, 1}));
  EXPECT_FALSE(caps.accepts({SampleFormat::kF32LE, 16000, 1}));
  EXPECT_FALSE(caps.accepts({SampleFormat::kF32LE, 48000, 6}));
  EXPECT_EQ(backend_->latency_ns(), 10'000'000u);
  EXPECT_EQ(backend_->idle_margin_ns(), 30'000'000u);
}

TEST_F(BackendTest, InitializesSharedLoopbackEventDrivenInTheNegotiatedFormat) {
  RecordingSink sink(2);
  ASSERT_FALSE(backend_->open({}));
  ASSERT_FALSE(backend_->start(config_of(SampleFormat::kS16LE, 44100, 1), sink));
  auto stream = activator_->stream(0);
  const FakeStream::InitializeCall init = stream->initialize_call();
  EXPECT_EQ(init.share_mode, AUDCLNT_SHAREMODE_SHARED);
  EXPECT_TRUE(init.flags & AUDCLNT_STREAMFLAGS_LOOPBACK);
  EXPECT_TRUE(init.flags & AUDCLNT_STREAMFLAGS_EVENTCALLBACK);
  EXPECT_EQ(init.buffer_duration, 2'000'000);  // buffer-time 200 ms
  EXPECT_EQ(init.periodicity, 0);
  ASSERT_EQ(init.format.size(), sizeof(WAVEFORMATEXTENSIBLE));
  WAVEFORMATEXTENSIBLE wf;
  std::memcpy(&wf, init.format.data(), sizeof wf);
  EXPECT_EQ(wf.Format.wFormatTag, WAVE_FORMAT_EXTENSIBLE);
  EXPECT_EQ(wf.Format.nSamplesPerSec, 44100u);
  EXPECT_EQ(wf.Format.nChannels, 1);
  EXPECT_EQ(wf.Format.wBitsPerSample, 16);
  const FakeStream::Counters c = stream->counters();
  EXPECT_EQ(c.initialize, 1);
  EXPECT_EQ(c.set_event_handle, 1);
  EXPECT_EQ(c.start, 1);
  EXPECT_NE(stream->event_handle(), nullptr);
  EXPECT_TRUE(stream->started());
  backend_->stop();
  EXPECT_FALSE(stream->started());
  EXPECT_EQ(stream->counters().stop, 1);
}

TEST_F(BackendTest, QpcStampedPacketsBecomeDeviceTimes) {
  RecordingSink sink(8);
  auto stream = start_default(sink);
  ASSERT_TRUE(stream);
  const uint64_t base = qpc_now();
  const uint64_t pushed_at = monotonic_now_ns();
  stream->push(packet(480, base, kDiscontinuity, 0.f));  // first after Start: flag ignored
  stream->push(packet(480, base + 100'000, 0, 1000.f));
  stream->push(packet(240, base + 200'000, 0, 2000.f));
  ASSERT_TRUE(sink.wait_for_packets(3));
  const auto packets = sink.calls_of(Kind::kPacket);
  ASSERT_EQ(packets.size(), 3u);
  const uint64_t expected_times[] = {base * 100, (base + 100'000) * 100, (base + 200'000) * 100};
  const uint32_t expected_frames[] = {480, 480, 240};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(packets[i].packet.device_time_ns, expected_times[i]) << i;
    EXPECT_EQ(packets[i].packet.frames, expected_frames[i]) << i;
    EXPECT_EQ(packets[i].packet.flags, kPacketNone) << i;
    EXPECT_GE(packets[i].packet.arrival_time_ns, pushed_at) << i;
    EXPECT_LE(packets[i].packet.arrival_time_ns, packets[i].at_ns) << i;
    ASSERT_EQ(packets[i].bytes.size(), size_t{expected_frames[i]} * 8) << i;
    float first_sample;
    std::memcpy(&first_sample, packets[i].bytes.data(), sizeof first_sample);
    EXPECT_EQ(first_sample, 1000.f * static_cast<float>(i)) << i;
  }
  ASSERT_TRUE(stream->wait_drained());
  EXPECT_EQ(stream->counters().release_buffer, 3);
}

TEST_F(BackendTest, PacketFlags) {
  RecordingSink sink(8);
  auto stream = start_default(sink);
  ASSERT_TRUE(stream);
  const uint64_t base = qpc_now();
  stream->push(packet(480, base, kDiscontinuity));             // first: ignored
  stream->push(packet(480, base + 100'000, kSilent));          // silent
  stream->push(packet(480, base + 200'000, kDiscontinuity));   // a real glitch
  stream->push(packet(480, base + 300'000, kTimestampError));  // time unreliable
  stream->push(packet(480, 0));                                // no QPC at all
  ASSERT_TRUE(sink.wait_for_packets(5));
  const auto p = sink.calls_of(Kind::kPacket);
  EXPECT_EQ(p[0].packet.flags, kPacketNone);
  EXPECT_EQ(p[1].packet.flags, kPacketSilent);
  EXPECT_TRUE(p[1].bytes.empty());  // silent data is not read
  EXPECT_EQ(p[2].packet.flags, kPacketDiscontinuity);
  EXPECT_EQ(p[3].packet.flags, kPacketTimestampError);
  EXPECT_EQ(p[4].packet.flags, kPacketTimestampError);
}

TEST_F(BackendTest, BurstIsReadUntilNextPacketSizeIsZero) {
  // 50 packets behind one event and no timeout wakes: all are read on that one wake, or
  // the sink never sees them all.
  make_backend(60000);
  RecordingSink sink(8);
  auto stream = start_default(sink);
  ASSERT_TRUE(stream);
  const uint64_t base = qpc_now();
  for (int i = 0; i < 50; ++i) {
    stream->push(packet(96, base + static_cast<uint64_t>(i) * 20'000, 0, static_cast<float>(i)),
                 /*signal=*/i == 49);
  }
  ASSERT_TRUE(sink.wait_for_packets(50));
  const auto p = sink.calls_of(Kind::kPacket);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(p[i].packet.device_time_ns, (base + static_cast<uint64_t>(i) * 20'000) * 100);
  }
  ASSERT_TRUE(stream->wait_drained());
  const FakeStream::Counters c = stream->counters();
  EXPECT_EQ(c.release_buffer, 50);
  EXPECT_EQ(c.get_buffer_empty, 0);  // it asked GetNextPacketSize, never GetBuffer blindly
}

TEST_F(BackendTest, LongIdleStretchesCallOnIdle) {
  RecordingSink sink(8);
  const uint64_t t0 = monotonic_now_ns();
  auto stream = start_default(sink);
  ASSERT_TRUE(stream);
  // No packets at all: the thread wakes on its own and reports idle, repeatedly.
  ASSERT_TRUE(sink.wait_for(Kind::kIdle, 5));
  auto idle = sink.calls_of(Kind::kIdle);
  EXPECT_GE(idle[0].idle_now_ns, t0 + WasapiBackend::kIdleMarginNs);
  for (size_t i = 1; i < idle.size(); ++i) {
    EXPECT_GT(idle[i].idle_now_ns, idle[i - 1].idle_now_ns);
  }
  // A packet: idle reports stop until the margin has passed again, then resume.
  sink.clear();
  stream->push(packet(480, qpc_now()));
  ASSERT_TRUE(sink.wait_for_packets(1));
  ASSERT_TRUE(sink.wait_for(Kind::kIdle, 3));
  const auto calls = sink.calls();
  uint64_t packet_arrival = 0;
  for (const auto &c : calls) {
    if (c.kind == Kind::kPacket) {
      packet_arrival = c.packet.arrival_time_ns;
    } else if (c.kind == Kind::kIdle && packet_arrival != 0) {
      EXPECT_GE(c.idle_now_ns, packet_arrival + WasapiBackend::kIdleMarginNs);
    }
  }
  EXPECT_NE(packet_arrival, 0u);
}

TEST_F(BackendTest, DeviceInvalidatedMidStreamIsDeviceLost) {
  RecordingSink sink(8);
  auto stream = start_default(sink);
  ASSERT_TRUE(stream);
  stream->push(packet(480, qpc_now()));
  ASSERT_TRUE(sink.wait_for_packets(1));
  stream->fail_with(AUDCLNT_E_DEVICE_INVALIDATED);
  ASSERT_TRUE(sink.wait_for(Kind::kError));
  const auto errors = sink.calls_of(Kind::kError);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].error.kind, ErrorKind::kDeviceLost);
  EXPECT_NE(errors[0].error.detail.find("0x88890004 (AUDCLNT_E_DEVICE_INVALIDATED"),
            std::string::npos)
      << errors[0].error.detail;
  backend_->stop();  // joins: after this the thread can call nothing
  const size_t calls = sink.calls().size();
  EXPECT_EQ(sink.calls().back().kind, Kind::kError);  // nothing after the error
  EXPECT_EQ(calls, sink.calls().size());
  // Starting again takes a fresh client: the old one is dead.
  RecordingSink sink2(8);
  ASSERT_FALSE(backend_->start(config_of(SampleFormat::kF32LE, 48000, 2), sink2));
  EXPECT_EQ(activator_->activations(), 2u);
  auto fresh = activator_->stream(1);
  fresh->push(packet(480, qpc_now()));
  EXPECT_TRUE(sink2.wait_for_packets(1));
}

TEST_F(BackendTest, TargetExitThroughTheProcessHandle) {
  ChildProcess child;
  std::string why;
  ASSERT_TRUE(child.start(30000, why)) << why;
  TargetSpec target;
  target.pid = child.pid();
  RecordingSink sink(8);
  auto stream = start_default(sink, target);
  ASSERT_TRUE(stream);
  EXPECT_EQ(backend_->resolved_pid(), child.pid());
  const auto requests = activator_->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].pid, child.pid());
  EXPECT_TRUE(requests[0].include_tree);

  stream->push(packet(480, qpc_now()));
  ASSERT_TRUE(sink.wait_for_packets(1));
  EXPECT_EQ(sink.count(Kind::kTargetExit), 0u);
  child.request_exit();
  ASSERT_EQ(child.wait(10000), 0);
  ASSERT_TRUE(sink.wait_for(Kind::kTargetExit));
  backend_->stop();
  const auto calls = sink.calls();
  EXPECT_EQ(calls.back().kind, Kind::kTargetExit);  // the last thing the sink heard
  EXPECT_EQ(sink.count(Kind::kTargetExit), 1u);
  EXPECT_EQ(sink.count(Kind::kError), 0u);
  EXPECT_EQ(stream->counters().stop, 1);
}

TEST_F(BackendTest, PacketsLeftAtExitAreDeliveredBeforeTheExit) {
  ChildProcess child;
  std::string why;
  ASSERT_TRUE(child.start(30000, why)) << why;
  // No timeout wakes: only the process handle can wake the thread to read them.
  make_backend(60000);
  TargetSpec target;
  target.pid = child.pid();
  RecordingSink sink(8);
  auto stream = start_default(sink, target);
  ASSERT_TRUE(stream);
  // Queued without an event: only the process handle wakes the thread.
  stream->push(packet(480, qpc_now(), 0, 42.f), /*signal=*/false);
  stream->push(packet(480, qpc_now(), 0, 43.f), /*signal=*/false);
  child.request_exit();
  ASSERT_EQ(child.wait(10000), 0);
  ASSERT_TRUE(sink.wait_for(Kind::kTargetExit));
  const auto calls = sink.calls();
  std::vector<Kind> kinds;
  for (const auto &c : calls) {
    if (c.kind != Kind::kIdle) {
      kinds.push_back(c.kind);
    }
  }
  ASSERT_EQ(kinds.size(), 3u);
  EXPECT_EQ(sink.count(Kind::kIdle), 0u);
  EXPECT_EQ(kinds[0], Kind::kPacket);
  EXPECT_EQ(kinds[1], Kind::kPacket);
  EXPECT_EQ(kinds[2], Kind::kTargetExit);
}

TEST_F(BackendTest, RestartAfterTheTargetExitedReportsTheExit) {
  ChildProcess child;
  std::string why;
  ASSERT_TRUE(child.start(30000, why)) << why;
  TargetSpec target;
  target.pid = child.pid();
  RecordingSink sink(8);
  auto stream = start_default(sink, target);
  ASSERT_TRUE(stream);
  backend_->stop();
  stream->push(packet(480, qpc_now()));  // captured while stopped: stale
  child.request_exit();
  ASSERT_EQ(child.wait(10000), 0);
  ASSERT_FALSE(backend_->start(config_of(SampleFormat::kF32LE, 48000, 2), sink));
  ASSERT_TRUE(sink.wait_for(Kind::kTargetExit));
  EXPECT_EQ(sink.count(Kind::kPacket), 0u);
  EXPECT_EQ(sink.count(Kind::kError), 0u);
}

TEST_F(BackendTest, StopStartNeverResets) {
  RecordingSink sink(8);
  auto stream = start_default(sink);
  ASSERT_TRUE(stream);
  stream->push(packet(480, qpc_now()));
  ASSERT_TRUE(sink.wait_for_packets(1));
  backend_->stop();
  EXPECT_FALSE(stream->started());
  // Captured while paused and never read: stale on resume.
  stream->push(packet(480, qpc_now(), 0, 555.f));
  ASSERT_FALSE(backend_->start(config_of(SampleFormat::kF32LE, 48000, 2), sink));
  EXPECT_TRUE(stream->started());
  stream->push(packet(480, qpc_now(), kDiscontinuity, 777.f));  // first after Start
  ASSERT_TRUE(sink.wait_for_packets(2));
  const auto p = sink.calls_of(Kind::kPacket);
  ASSERT_EQ(p.size(), 2u);
  float first_sample;
  std::memcpy(&first_sample, p[1].bytes.data(), sizeof first_sample);
  EXPECT_EQ(first_sample, 777.f);  // not the stale 555
  EXPECT_EQ(p[1].packet.flags, kPacketNone);
  backend_->stop();
  const FakeStream::Counters c = stream->counters();
  EXPECT_EQ(c.reset, 0);
  EXPECT_EQ(c.initialize, 1);
  EXPECT_EQ(c.start, 2);
  EXPECT_EQ(c.stop, 2);
  EXPECT_EQ(activator_->activations(), 1u);
}

TEST_F(BackendTest, NewFormatTakesAFreshClient) {
  RecordingSink sink(8);
  auto stream = start_default(sink);
  ASSERT_TRUE(stream);
  backend_->stop();
  RecordingSink sink2(4);
  ASSERT_FALSE(backend_->start(config_of(SampleFormat::kS16LE, 48000, 2), sink2));
  EXPECT_EQ(activator_->activations(), 2u);
  EXPECT_EQ(stream->counters().initialize, 1);
  EXPECT_EQ(activator_->stream(1)->counters().initialize, 1);
}

TEST_F(BackendTest, FormatRefusedByInitialize) {
  ASSERT_FALSE(backend_->open({}));
  activator_->stream(0)->initialize_result = AUDCLNT_E_UNSUPPORTED_FORMAT;
  RecordingSink sink(8);
  const CaptureError error = backend_->start(config_of(SampleFormat::kF32LE, 48000, 2), sink);
  EXPECT_EQ(error.kind, ErrorKind::kFormatRefused);
  EXPECT_NE(error.message.find("F32LE, 48000 Hz, 2 channels"), std::string::npos) << error.message;
  EXPECT_NE(error.detail.find("0x88890008 (AUDCLNT_E_UNSUPPORTED_FORMAT"), std::string::npos)
      << error.detail;
  EXPECT_EQ(sink.calls().size(), 0u);
}

TEST_F(BackendTest, FormatOutsideTheCapsIsRefusedBeforeWindowsSeesIt) {
  ASSERT_FALSE(backend_->open({}));
  RecordingSink sink(2);
  const CaptureError error = backend_->start(config_of(SampleFormat::kS16LE, 16000, 1), sink);
  EXPECT_EQ(error.kind, ErrorKind::kFormatRefused);
  EXPECT_EQ(activator_->stream(0)->counters().initialize, 0);
}

TEST_F(BackendTest, NoTargetExcludesThisProcess) {
  ASSERT_FALSE(backend_->open({}));
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
  const CaptureError error = backend_->open({});
  EXPECT_EQ(error.kind, ErrorKind::kUnsupportedOs);
  EXPECT_NE(error.message.find("Windows 10 version 2004 (build 19041)"), std::string::npos)
      << error.message;
  EXPECT_EQ(activator_->activations(), 0u);
}

TEST_F(BackendTest, ActivationErrorFailsOpen) {
  activator_->next_error = {ErrorKind::kBackendUnavailable, "process loopback unavailable",
                            "activate result 0x80070002"};
  const CaptureError error = backend_->open({});
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
  const CaptureError error = backend.open({});
  EXPECT_EQ(error.kind, ErrorKind::kTimeout);
  EXPECT_NE(error.message.find("250 ms"), std::string::npos) << error.message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(5000));
  EXPECT_EQ(held.size(), 1u);
}

}  // namespace
}  // namespace wasapi
}  // namespace procaudio
