// SPDX-License-Identifier: LGPL-2.1-or-later
// The WASAPI capture loop (WasapiCapture, driven through WasapiBackend) against COM fakes of
// the process-loopback client (wine has no process loopback): Initialize's parameters and its
// two variants, QPC device times, packet flags, bursts, idle stretches, device loss, the
// target's exit and the audio still in flight then, Stop/Start without Reset.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>

#include "backend_fixture.h"

namespace procaudio {
namespace wasapi {
namespace {

using std::chrono::milliseconds;
using testing::BackendTest;
using testing::ChildProcess;
using testing::config_of;
using testing::FakeStream;
using testing::kDiscontinuity;
using testing::kSilent;
using testing::kTimestampError;
using testing::packet;
using testing::qpc_now;
using testing::RecordingSink;
using Kind = RecordingSink::Kind;

constexpr DWORD kLoopbackEvent = AUDCLNT_STREAMFLAGS_LOOPBACK | AUDCLNT_STREAMFLAGS_EVENTCALLBACK;
constexpr DWORD kConvert =
    AUDCLNT_STREAMFLAGS_AUTOCONVERTPCM | AUDCLNT_STREAMFLAGS_SRC_DEFAULT_QUALITY;

TEST_F(BackendTest, InitializeAsksTheAudioEngineToConvertFirst) {
  RecordingSink &sink = new_sink(8);
  auto stream = start_default(sink);
  ASSERT_TRUE(stream);
  EXPECT_EQ(stream->initialize_call().flags, kLoopbackEvent | kConvert);
  ASSERT_NE(backend_->initialize_variant(), nullptr);
  EXPECT_STREQ(backend_->initialize_variant(),
               "LOOPBACK | EVENTCALLBACK | AUTOCONVERTPCM | SRC_DEFAULT_QUALITY");
  EXPECT_EQ(activator_->activations(), 1u);
}

TEST_F(BackendTest, RefusedConversionIsTriedOnceMoreWithoutItOnAFreshClient) {
  for (HRESULT refusal :
       {E_INVALIDARG, AUDCLNT_E_UNSUPPORTED_FORMAT, AUDCLNT_E_INVALID_STREAM_FLAG}) {
    make_backend(10);
    activator_->configure = [refusal](FakeStream &s) {
      s.refuse_flags = AUDCLNT_STREAMFLAGS_AUTOCONVERTPCM;
      s.refuse_flags_result = refusal;
    };
    RecordingSink &sink = new_sink(8);
    auto stream = start_default(sink);
    ASSERT_TRUE(stream) << std::hex << refusal;
    // The first client was refused and is not used again; the second runs.
    ASSERT_EQ(activator_->activations(), 2u);
    EXPECT_EQ(activator_->stream(0)->counters().initialize, 1);
    EXPECT_EQ(activator_->stream(0)->counters().start, 0);
    EXPECT_EQ(stream, activator_->stream(1));
    EXPECT_EQ(stream->initialize_call().flags, kLoopbackEvent);
    EXPECT_STREQ(backend_->initialize_variant(), "LOOPBACK | EVENTCALLBACK");
    // Same target on both activations.
    const auto requests = activator_->requests();
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[1].pid, requests[0].pid);
    EXPECT_EQ(requests[1].include_tree, requests[0].include_tree);
    stream->push(packet(480, qpc_now()));
    EXPECT_TRUE(sink.wait_for_packets(1));
    backend_->close();
  }
}

TEST_F(BackendTest, BothVariantsRefusedIsFormatRefusedNamingBoth) {
  activator_->configure = [](FakeStream &s) { s.initialize_result = AUDCLNT_E_UNSUPPORTED_FORMAT; };
  ASSERT_FALSE(backend_->open(testing::everything_but_us()));
  RecordingSink &sink = new_sink(8);
  const CaptureError error = backend_->start(config_of(SampleFormat::kF32LE, 48000, 2), sink);
  EXPECT_EQ(error.kind, ErrorKind::kFormatRefused);
  EXPECT_NE(error.message.find("F32LE, 48000 Hz, 2 channels"), std::string::npos) << error.message;
  EXPECT_NE(error.detail.find("IAudioClient::Initialize(SHARED, LOOPBACK | EVENTCALLBACK | "
                              "AUTOCONVERTPCM | SRC_DEFAULT_QUALITY) failed: 0x88890008 "
                              "(AUDCLNT_E_UNSUPPORTED_FORMAT"),
            std::string::npos)
      << error.detail;
  EXPECT_NE(error.detail.find("IAudioClient::Initialize(SHARED, LOOPBACK | EVENTCALLBACK) "
                              "failed: 0x88890008"),
            std::string::npos)
      << error.detail;
  EXPECT_EQ(activator_->activations(), 2u);
  EXPECT_EQ(sink.calls().size(), 0u);
}

TEST_F(BackendTest, OtherInitializeFailuresAreNotRetried) {
  activator_->configure = [](FakeStream &s) { s.initialize_result = AUDCLNT_E_DEVICE_INVALIDATED; };
  ASSERT_FALSE(backend_->open(testing::everything_but_us()));
  RecordingSink &sink = new_sink(8);
  const CaptureError error = backend_->start(config_of(SampleFormat::kF32LE, 48000, 2), sink);
  EXPECT_EQ(error.kind, ErrorKind::kBackendUnavailable);
  EXPECT_NE(error.detail.find("0x88890004"), std::string::npos) << error.detail;
  EXPECT_EQ(activator_->activations(), 1u);
}

TEST_F(BackendTest, AudioServiceGoneMidStreamIsDeviceLost) {
  // The codes a restarted or stopped audio service gives its clients.
  struct Case {
    HRESULT hr;
    const char *text;
  } cases[] = {
      {RPC_E_DISCONNECTED, "0x80010108 (RPC_E_DISCONNECTED"},
      {static_cast<HRESULT>(0x800706BAu),
       "0x800706BA (HRESULT_FROM_WIN32(RPC_S_SERVER_UNAVAILABLE)"},
      {AUDCLNT_E_RESOURCES_INVALIDATED, "0x88890026 (AUDCLNT_E_RESOURCES_INVALIDATED"},
      {AUDCLNT_E_SERVICE_NOT_RUNNING, "0x88890010 (AUDCLNT_E_SERVICE_NOT_RUNNING"},
  };
  for (const Case &c : cases) {
    make_backend(10);
    RecordingSink &sink = new_sink(8);
    auto stream = start_default(sink);
    ASSERT_TRUE(stream);
    stream->push(packet(480, qpc_now()));
    ASSERT_TRUE(sink.wait_for_packets(1));
    stream->fail_with(c.hr);
    ASSERT_TRUE(sink.wait_for(Kind::kError)) << c.text;
    const auto errors = sink.calls_of(Kind::kError);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].error.kind, ErrorKind::kDeviceLost) << c.text;
    EXPECT_NE(errors[0].error.detail.find(c.text), std::string::npos) << errors[0].error.detail;
    EXPECT_NE(errors[0].error.detail.find("IAudioCaptureClient::GetBuffer"), std::string::npos)
        << errors[0].error.detail;
    backend_->close();
  }
}

TEST_F(BackendTest, AudioStillInFlightAfterTheTargetExitedIsDelivered) {
  // The audio engine hands over what the target played last after the process is gone:
  // packets arriving within the drain time come before the end.
  constexpr uint64_t kDrainNs = 2'000'000'000;
  make_backend(10, kDrainNs);
  ChildProcess child;
  std::string why;
  ASSERT_TRUE(child.start(30000, why)) << why;
  TargetSpec target;
  target.pid = child.pid();
  sessions_->play(L"child", child.pid());  // its one stream
  RecordingSink &sink = new_sink(8);
  auto stream = start_default(sink, target);
  ASSERT_TRUE(stream);
  stream->push(packet(480, qpc_now(), 0, 1.f));
  ASSERT_TRUE(sink.wait_for_packets(1));
  const uint64_t asked_ns = monotonic_now_ns();  // the process cannot exit before this
  child.request_exit();
  ASSERT_EQ(child.wait(10000), 0);
  stream->push(packet(480, qpc_now(), 0, 2.f));  // in flight when the process went
  ASSERT_TRUE(sink.wait_for(Kind::kTargetExit, 1, milliseconds(10000)));
  backend_->stop();
  const auto calls = sink.calls();
  std::vector<Kind> kinds;
  uint64_t exit_at = 0;
  for (const auto &c : calls) {
    if (c.kind != Kind::kIdle && c.kind != Kind::kTargetState) {
      kinds.push_back(c.kind);
    }
    if (c.kind == Kind::kTargetExit) {
      exit_at = c.at_ns;
    }
  }
  ASSERT_EQ(kinds.size(), 3u);
  EXPECT_EQ(kinds[0], Kind::kPacket);
  EXPECT_EQ(kinds[1], Kind::kPacket);
  EXPECT_EQ(kinds[2], Kind::kTargetExit);
  float first_sample;
  std::memcpy(&first_sample, sink.calls_of(Kind::kPacket)[1].bytes.data(), sizeof first_sample);
  EXPECT_EQ(first_sample, 2.f);
  // The end waited for the drain time, counted from when the thread saw the exit.
  EXPECT_GE(exit_at, asked_ns + kDrainNs);
  // What the element's procaudio-target messages say: capturing it, then it exited.
  const auto states = sink.calls_of(Kind::kTargetState);
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[0].state.phase, TargetState::Phase::kCapturing);
  EXPECT_EQ(states[0].state.pid, child.pid());
  EXPECT_EQ(states[0].state.streams, 1u);
  EXPECT_EQ(states[1].state.phase, TargetState::Phase::kExited);
  EXPECT_EQ(states[1].state.pid, child.pid());
  EXPECT_EQ(states[1].state.streams, 0u);
  EXPECT_LE(states[1].at_ns, exit_at);
}

TEST_F(BackendTest, InitializesSharedLoopbackEventDrivenInTheNegotiatedFormat) {
  RecordingSink &sink = new_sink(2);
  ASSERT_FALSE(backend_->open(testing::everything_but_us()));
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
  RecordingSink &sink = new_sink(8);
  auto stream = start_default(sink);
  ASSERT_TRUE(stream);
  const uint64_t base = qpc_now();
  const uint64_t pushed_at = monotonic_now_ns();
  stream->push(packet(480, base, kDiscontinuity, 0.f));  // as after every Start: a hint
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
  RecordingSink &sink = new_sink(8);
  auto stream = start_default(sink);
  ASSERT_TRUE(stream);
  const uint64_t base = qpc_now();
  stream->push(packet(480, base, kDiscontinuity));             // as after Start
  stream->push(packet(480, base + 100'000, kSilent));          // silent
  stream->push(packet(480, base + 200'000, kDiscontinuity));   // after an idle stretch, say
  stream->push(packet(480, base + 300'000, kTimestampError));  // time unreliable
  stream->push(packet(480, 0));                                // no QPC at all
  ASSERT_TRUE(sink.wait_for_packets(5));
  const auto p = sink.calls_of(Kind::kPacket);
  EXPECT_EQ(p[0].packet.flags, kPacketNone);
  EXPECT_EQ(p[1].packet.flags, kPacketSilent);
  EXPECT_TRUE(p[1].bytes.empty());  // silent data is not read
  // DATA_DISCONTINUITY is only a hint: the device times (continuous here) decide.
  EXPECT_EQ(p[2].packet.flags, kPacketNone);
  EXPECT_EQ(p[3].packet.flags, kPacketTimestampError);
  EXPECT_EQ(p[4].packet.flags, kPacketTimestampError);
}

TEST_F(BackendTest, BurstIsReadUntilGetBufferSaysEmpty) {
  // 50 packets behind one event and no timeout wakes (nor idle ticks): all are read on that
  // one wake, or the sink never sees them all.
  make_backend(60000);
  RecordingSink &sink = new_sink(8);
  sink.set_quiet_ns(UINT64_MAX);
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
  // One call per packet, and one that says the buffer is empty; GetNextPacketSize is not
  // needed (and wine's never reports a lost device).
  EXPECT_EQ(c.get_buffer, 51);
  EXPECT_EQ(c.get_buffer_empty, 1);
  EXPECT_EQ(c.next_packet_size, 0);
}

TEST_F(BackendTest, LongIdleStretchesCallOnIdle) {
  RecordingSink &sink = new_sink(8);
  const uint64_t t0 = monotonic_now_ns();
  auto stream = start_default(sink);
  ASSERT_TRUE(stream);
  // No packets at all: the thread wakes on its own at the sink's idle deadline (the margin
  // after the last packet or tick) and ticks, repeatedly.
  ASSERT_TRUE(sink.wait_for(Kind::kIdle, 5));
  auto idle = sink.calls_of(Kind::kIdle);
  EXPECT_GE(idle[0].idle_now_ns, t0 + WasapiBackend::kIdleMarginNs);
  for (size_t i = 1; i < idle.size(); ++i) {
    EXPECT_GT(idle[i].idle_now_ns, idle[i - 1].idle_now_ns);
  }
  // A packet moves the sink's deadline: no tick until the margin has passed again.
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
  RecordingSink &sink = new_sink(8);
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
  RecordingSink &sink2 = new_sink(8);
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
  RecordingSink &sink = new_sink(8);
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
  // No timeout wakes (the sink wants no idle ticks either): only the process handle can wake
  // the thread to read them.
  make_backend(60000);
  TargetSpec target;
  target.pid = child.pid();
  RecordingSink &sink = new_sink(8);
  sink.set_quiet_ns(UINT64_MAX);
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
    if (c.kind != Kind::kIdle && c.kind != Kind::kTargetState) {
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
  RecordingSink &sink = new_sink(8);
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
  RecordingSink &sink = new_sink(8);
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
  stream->push(packet(480, qpc_now(), kDiscontinuity, 777.f));  // as after every Start
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

}  // namespace
}  // namespace wasapi
}  // namespace procaudio
