// SPDX-License-Identifier: LGPL-2.1-or-later
// The capture loop against a real WASAPI implementation: wine's, under linux_side.py, which
// runs this program inside a private PipeWire session with a PulseAudio server. WasapiBackend
// and its capture thread (the code the element runs after activation) get, through the
// EndpointActivator seam, a client of wine's default capture endpoint: winepulse's default
// source, the session's null-sink monitor, where a Linux process plays a known tone.
//
// Where wine behaves unlike Windows, the test says so and asserts what holds for both:
// - wine stamps a packet's QPC position when it reads it from PulseAudio, not when its first
//   frame was captured, so device times trail capture by PulseAudio's latency;
// - wine signals the audio event every period (10 ms) whether or not a packet is ready;
// - wine's GetNextPacketSize never fails; GetBuffer reports a lost server as
//   AUDCLNT_E_DEVICE_INVALIDATED (the loop reads with GetBuffer for this reason too);
// - a capture endpoint's stream is not a loopback stream: no LOOPBACK flag, and an endpoint
//   monitor always delivers (silence included), where process loopback sends nothing for an
//   idle target.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/capture_engine.h"
#include "endpoint_activator.h"
#include "linux_side.h"
#include "test_support.h"
#include "tone_analysis.h"
#include "tone_player.h"
#include "wasapi/com_thread.h"
#include "wasapi/endpoints.h"
#include "wasapi/sessions.h"
#include "wasapi/wasapi_backend.h"

namespace procaudio {
namespace wasapi {
namespace {

using std::chrono::milliseconds;
using testing::channel_of;
using testing::ChildProcess;
using testing::clean_span;
using testing::EndpointActivator;
using testing::kLevelToleranceDb;
using testing::level_dbfs;
using testing::LinuxSide;
using testing::RecordingSink;
using testing::TonePlayer;
using Kind = RecordingSink::Kind;

constexpr double kPlayedDb = -6.0206;  // amplitude 0.5
constexpr double kToneHz = 440;
constexpr double kAbsentHz = 1000;  // nobody plays it

CaptureConfig config_of(const AudioFormat &format) {
  CaptureConfig config;
  config.format = format;
  config.buffer_ns = 200'000'000;
  return config;
}

// Frames of the recorded packets, from the first audible one (the tone's start), as one channel.
std::vector<float> audible_channel(const std::vector<RecordingSink::Call> &calls,
                                   const AudioFormat &format, uint32_t channel = 0) {
  std::vector<float> out;
  bool started = false;
  for (const auto &c : calls) {
    if (c.kind != Kind::kPacket) {
      continue;
    }
    std::vector<float> x = c.bytes.empty()
                               ? std::vector<float>(c.packet.frames, 0.f)
                               : channel_of(c.bytes.data(), c.packet.frames, format, channel);
    if (!started) {
      auto loud = std::find_if(x.begin(), x.end(), [](float v) { return std::fabs(v) > 1e-3f; });
      if (loud == x.end()) {
        continue;
      }
      x.erase(x.begin(), loud);
      started = true;
    }
    out.insert(out.end(), x.begin(), x.end());
  }
  return out;
}

// Waits (bounded) until `frames` frames of audio followed the tone's start.
// The tone at `expected_db` and nothing at kAbsentHz, judged where the tone is unbroken: a
// player starved on a loaded machine, or audio queued before a Stop() meeting the new audio,
// breaks it with a dropout or a phase jump, which would read as a lower level and smear the
// tone over the spectrum. At least 100 ms must be unbroken.
void expect_tone(const std::vector<float> &x, uint32_t rate, double expected_db,
                 const std::string &what) {
  size_t glitches = 0;
  const std::vector<float> clean =
      clean_span(x, kToneHz, std::pow(10.0, expected_db / 20), rate, 48, &glitches);
  ASSERT_GE(clean.size(), size_t{rate} / 10)
      << what << ": " << glitches << " glitches leave no unbroken 100 ms of the tone";
  EXPECT_NEAR(level_dbfs(clean, kToneHz, rate), expected_db, kLevelToleranceDb)
      << what << ", over " << clean.size() << " unbroken frames (" << glitches
      << " glitches elsewhere)";
  EXPECT_LT(level_dbfs(clean, kAbsentHz, rate), -60) << what;
}

bool wait_audible(RecordingSink &sink, const AudioFormat &format, size_t frames,
                  milliseconds timeout = milliseconds(15000)) {
  return sink.wait_until(
      [&](const std::vector<RecordingSink::Call> &calls) {
        return audible_channel(calls, format).size() >= frames;
      },
      timeout);
}

class RealWasapiUnderWine : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::running_under_wine())
        << "wine only: on Windows, the wasapi-real suite proves the element itself";
    ASSERT_TRUE(LinuxSide::available()) << LinuxSide::how_to_run();
  }
  void TearDown() override {
    for (uint32_t pid : players_) {
      std::string error;
      LinuxSide::stop(pid, error);
    }
  }

  std::unique_ptr<WasapiBackend> make_backend(uint32_t wake_interval_ms = 10) {
    WasapiBackendOptions options;
    options.activator = std::make_shared<EndpointActivator>();
    options.wake_interval_ms = wake_interval_ms;
    return std::make_unique<WasapiBackend>(Logger{}, options);
  }

  // A Linux process playing kToneHz at kPlayedDb into the null sink for `seconds`.
  void play(double seconds) {
    std::string error;
    const uint32_t pid = LinuxSide::play(kToneHz, seconds, kPlayedDb, error);
    ASSERT_NE(pid, 0u) << error;
    players_.push_back(pid);
  }

  // The backend opened and started in `format` into `sink`.
  void start(WasapiBackend &backend, const AudioFormat &format, CaptureSink &sink,
             const TargetSpec &target = testing::everything_but_us()) {
    const CaptureError open_error = backend.open(target);
    ASSERT_FALSE(open_error) << open_error.message << " / " << open_error.detail;
    const CaptureError start_error = backend.start(config_of(format), sink);
    ASSERT_FALSE(start_error) << start_error.message << " / " << start_error.detail;
  }

  std::vector<uint32_t> players_;
};

TEST_F(RealWasapiUnderWine, CapturesALinuxProcessPlayingIntoTheNullSink) {
  const AudioFormat format{SampleFormat::kF32LE, 48000, 2};
  auto backend = make_backend();
  RecordingSink sink(format.bytes_per_frame());
  ASSERT_NO_FATAL_FAILURE(start(*backend, format, sink));
  ASSERT_NO_FATAL_FAILURE(play(4));
  ASSERT_TRUE(wait_audible(sink, format, 48000)) << "no second of the tone within 15 s";
  backend->stop();
  const auto calls = sink.calls();
  EXPECT_EQ(sink.count(Kind::kError), 0u);
  for (uint32_t ch = 0; ch < 2; ++ch) {
    std::vector<float> x = audible_channel(calls, format, ch);
    x.resize(48000);
    expect_tone(x, 48000, kPlayedDb, "channel " + std::to_string(ch));
  }
  // wine takes the conversion flags (its Initialize accepts AUTOCONVERTPCM and
  // SRC_DEFAULT_QUALITY): the first variant is the one used.
  ASSERT_NE(backend->initialize_variant(), nullptr);
  EXPECT_STREQ(backend->initialize_variant(),
               "EVENTCALLBACK | AUTOCONVERTPCM | SRC_DEFAULT_QUALITY");
  ::testing::Test::RecordProperty("initialize_variant", backend->initialize_variant());
}

TEST_F(RealWasapiUnderWine, EveryFormatTheElementOffersIsCapturedAtThePlayedLevel) {
  ASSERT_NO_FATAL_FAILURE(play(30));
  for (SampleFormat sf : {SampleFormat::kF32LE, SampleFormat::kS16LE}) {
    for (uint32_t rate : {44100u, 48000u}) {
      for (uint32_t channels : {1u, 2u}) {
        const AudioFormat format{sf, rate, channels};
        const std::string what = std::string(sample_format_name(sf)) + " " + std::to_string(rate) +
                                 " Hz " + std::to_string(channels) + " ch";
        auto backend = make_backend();
        RecordingSink sink(format.bytes_per_frame());
        ASSERT_NO_FATAL_FAILURE(start(*backend, format, sink)) << what;
        ASSERT_TRUE(wait_audible(sink, format, rate / 2)) << what;
        backend->close();
        const auto calls = sink.calls();
        // The server mixes the stereo tone down to mono at constant power (PipeWire's
        // channel mixer: (L + R) / sqrt 2), so mono is 3 dB up; Windows' engine may average.
        const double expected = channels == 1 ? kPlayedDb + 3.0103 : kPlayedDb;
        for (uint32_t ch = 0; ch < channels; ++ch) {
          std::vector<float> x = audible_channel(calls, format, ch);
          x.resize(rate / 2);
          expect_tone(x, rate, expected, what);
        }
      }
    }
  }
}

TEST_F(RealWasapiUnderWine, PacketsArriveOnTheAudioEngineEventsNotByPolling) {
  // No timeout wakes at all (the longest wait is a minute, and the sink wants no idle
  // ticks): whatever is read, the audio engine's event woke the thread for it.
  const AudioFormat format{SampleFormat::kF32LE, 48000, 2};
  auto backend = make_backend(60000);
  RecordingSink sink(format.bytes_per_frame(), UINT64_MAX);
  ASSERT_NO_FATAL_FAILURE(start(*backend, format, sink));
  ASSERT_NO_FATAL_FAILURE(play(4));
  ASSERT_TRUE(wait_audible(sink, format, 48000));
  const WakeCounts wakes = backend->wake_counts();
  backend->stop();
  const size_t packets = sink.count(Kind::kPacket);
  EXPECT_EQ(wakes.timeout, 0u);
  EXPECT_EQ(wakes.packets_without_event, 0u);
  EXPECT_GE(wakes.packets_on_event, 100u);  // a second of 10 ms packets, at least
  EXPECT_LE(wakes.packets_on_event, packets);
  EXPECT_GE(wakes.audio_event, 100u);
  ::testing::Test::RecordProperty("event_wakes", static_cast<int>(wakes.audio_event));
  ::testing::Test::RecordProperty("packets", static_cast<int>(packets));
}

// Records every packet (for its device and arrival times) and hands it on to the engine.
class TeeSink final : public CaptureSink {
 public:
  TeeSink(RecordingSink &record, CaptureSink &next) : record_(record), next_(next) {}
  void on_packet(const Packet &p) override {
    record_.on_packet(p);
    next_.on_packet(p);
  }
  void on_idle(uint64_t now_ns) override {
    record_.on_idle(now_ns);
    next_.on_idle(now_ns);
  }
  void on_target_exit() override {
    record_.on_target_exit();
    next_.on_target_exit();
  }
  void on_error(const CaptureError &e) override {
    record_.on_error(e);
    next_.on_error(e);
  }
  void on_target_state(const TargetState &state) override {
    record_.on_target_state(state);
    next_.on_target_state(state);
  }
  uint64_t idle_deadline_ns() const override { return next_.idle_deadline_ns(); }

 private:
  RecordingSink &record_;
  CaptureSink &next_;
};

TEST_F(RealWasapiUnderWine, DeviceTimesAreQpcTimesAndTheStreamStaysContinuous) {
  // The real engine behind the capture loop, read by a streaming thread as the element does.
  const AudioFormat format{SampleFormat::kF32LE, 48000, 2};
  EngineSettings settings;
  settings.format = format;
  settings.chunk_frames = 480;
  settings.capacity_frames = 9600;
  settings.idle_margin_ns = WasapiBackend::kIdleMarginNs;
  CaptureEngine engine;
  engine.configure(settings);
  RecordingSink record(format.bytes_per_frame());
  TeeSink tee(record, engine);
  const uint64_t begin_ns = monotonic_now_ns();
  engine.begin(begin_ns);
  std::vector<Chunk> chunks;
  std::thread reader([&] {
    std::vector<uint8_t> buffer(size_t{settings.chunk_frames} * format.bytes_per_frame());
    const uint64_t stream = engine.stream_id();
    Chunk chunk;
    while (engine.read(chunk, buffer.data(), stream) == CaptureEngine::ReadStatus::kChunk) {
      engine.note_pushed(chunk, monotonic_now_ns());
      chunks.push_back(chunk);
    }
  });
  auto backend = make_backend();
  ASSERT_NO_FATAL_FAILURE(start(*backend, format, tee));
  ASSERT_NO_FATAL_FAILURE(play(5));
  const bool heard = wait_audible(record, format, 3 * 48000);
  backend->stop();
  engine.on_target_exit();  // the backend calls nothing after stop(): the reader drains, ends
  reader.join();
  ASSERT_TRUE(heard);
  const EngineStats stats = engine.stats();
  const auto packets = record.calls_of(Kind::kPacket);
  ASSERT_GE(packets.size(), 300u);

  // Device times are QPC times, on the monotonic clock: never ahead of the packet's arrival,
  // and never older than the WASAPI buffer (200 ms): wine re-stamps a packet it overwrites.
  // (On Windows the stamp is the first frame's capture; wine's is its read from the server.)
  for (const auto &p : packets) {
    EXPECT_LE(p.packet.device_time_ns, p.packet.arrival_time_ns);
    EXPECT_LT(p.packet.arrival_time_ns - p.packet.device_time_ns, 250'000'000u);
  }
  // They advance with the audio: each stamp lags its frames' capture by between 0 and what a
  // packet can wait (the server's latency and the buffer), so over the run the two spans
  // differ by less than that, whatever the machine's load.
  uint64_t frames_between = 0;
  for (size_t i = 0; i + 1 < packets.size(); ++i) {
    frames_between += packets[i].packet.frames;
  }
  const double device_span_s = static_cast<double>(packets.back().packet.device_time_ns -
                                                   packets.front().packet.device_time_ns) /
                               1e9;
  const double frames_span_s = static_cast<double>(frames_between) / format.rate;
  EXPECT_NEAR(device_span_s, frames_span_s, 0.3);

  // The stream the engine made of it is continuous and every frame is accounted for.
  ASSERT_FALSE(chunks.empty());
  EXPECT_TRUE(chunks.front().discont);
  uint64_t gap_frames = 0, disconts = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (i > 0) {
      EXPECT_EQ(chunks[i].offset, chunks[i - 1].offset + chunks[i - 1].frames) << i;
    }
    gap_frames += chunks[i].gap ? chunks[i].frames : 0;
    disconts += chunks[i].discont ? 1 : 0;
  }
  EXPECT_EQ(stats.frames_captured + stats.frames_gap_filled,
            stats.frames_pushed + stats.frames_dropped);
  EXPECT_EQ(gap_frames, stats.frames_gap_filled);
  EXPECT_EQ(disconts, stats.discontinuities);
  EXPECT_EQ(stats.discontinuities, 1 + stats.resyncs);  // each one after the first explained
  // GAP only where the packets left a real hole: no arrival for the idle margin (wine's timer
  // thread delayed, bursts after), or a jump in device time past the alignment threshold;
  // never more silence than those holes lasted, plus per hole a chunk (the fill's granularity)
  // and the alignment threshold: the timeline keeps audio within that distance of its stamps
  // without a resync, and a fill starts where the stream is, so it also makes up for the
  // distance the stream was behind the clock when the hole began (wine's stamps jitter).
  uint64_t hole_ns = 0, holes = 0;
  uint64_t previous_arrival = begin_ns, previous_end = 0;
  for (const auto &p : packets) {
    const uint64_t arrival_gap = p.packet.arrival_time_ns - previous_arrival;
    const uint64_t device_jump = previous_end != 0 && p.packet.device_time_ns > previous_end
                                     ? p.packet.device_time_ns - previous_end
                                     : 0;
    if (arrival_gap >= settings.idle_margin_ns || device_jump > settings.alignment_threshold_ns) {
      hole_ns += std::max(arrival_gap, device_jump);
      ++holes;
    }
    previous_arrival = p.packet.arrival_time_ns;
    previous_end =
        p.packet.device_time_ns + uint64_t{p.packet.frames} * 1'000'000'000 / format.rate;
  }
  EXPECT_LE(stats.frames_gap_filled,
            (hole_ns + holes * settings.alignment_threshold_ns) * format.rate / 1'000'000'000 +
                holes * settings.chunk_frames);
  ::testing::Test::RecordProperty("frames_gap_filled", static_cast<int>(stats.frames_gap_filled));
  ::testing::Test::RecordProperty("holes", static_cast<int>(holes));
  ::testing::Test::RecordProperty("resyncs", static_cast<int>(stats.resyncs));
  std::printf(
      "%zu packets, %zu chunks; gap-filled %llu frames over %llu holes; %llu resyncs; "
      "device span %.4f s for %.4f s of frames\n",
      packets.size(), chunks.size(), static_cast<unsigned long long>(stats.frames_gap_filled),
      static_cast<unsigned long long>(holes), static_cast<unsigned long long>(stats.resyncs),
      device_span_s, frames_span_s);
}

TEST_F(RealWasapiUnderWine, StopAndStartWithoutResetResumes) {
  const AudioFormat format{SampleFormat::kF32LE, 48000, 2};
  ASSERT_NO_FATAL_FAILURE(play(20));
  auto backend = make_backend();
  RecordingSink sink(format.bytes_per_frame());
  ASSERT_NO_FATAL_FAILURE(start(*backend, format, sink));
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(wait_audible(sink, format, 24000)) << "round " << round;
    backend->stop();  // IAudioClient::Stop; the same client is started again
    std::vector<float> x = audible_channel(sink.calls(), format);
    x.resize(24000);
    expect_tone(x, 48000, kPlayedDb, "round " + std::to_string(round));
    sink.clear();
    const CaptureError again = backend->start(config_of(format), sink);
    ASSERT_FALSE(again) << again.message << " / " << again.detail;
  }
  backend->close();
  EXPECT_EQ(sink.count(Kind::kError), 0u);
}

TEST_F(RealWasapiUnderWine, TheTargetsExitEndsTheCaptureAfterWhatWasInFlight) {
  // The process handle is waited on with the audio event; after the exit, packets are read
  // for the idle margin, then the end. (The endpoint's stream does not belong to the child,
  // so the audio goes on: the end comes from the handle alone.)
  const AudioFormat format{SampleFormat::kF32LE, 48000, 2};
  ChildProcess child;
  std::string why;
  ASSERT_TRUE(child.start(30000, why)) << why;
  TargetSpec target;
  target.pid = child.pid();
  auto backend = make_backend();
  RecordingSink sink(format.bytes_per_frame());
  ASSERT_NO_FATAL_FAILURE(start(*backend, format, sink, target));
  ASSERT_TRUE(sink.wait_for_packets(10));
  const uint64_t asked_ns = monotonic_now_ns();
  child.request_exit();
  ASSERT_EQ(child.wait(10000), 0);
  ASSERT_TRUE(sink.wait_for(Kind::kTargetExit));
  backend->stop();
  const auto calls = sink.calls();
  EXPECT_EQ(calls.back().kind, Kind::kTargetExit);
  EXPECT_GE(calls.back().at_ns, asked_ns + WasapiBackend::kIdleMarginNs);
  size_t after_exit = 0;
  for (const auto &c : calls) {
    after_exit += c.kind == Kind::kPacket && c.at_ns > asked_ns ? 1 : 0;
  }
  EXPECT_GE(after_exit, 1u) << "the drain read nothing: wine delivers every 10 ms";
  EXPECT_EQ(sink.count(Kind::kError), 0u);
}

TEST_F(RealWasapiUnderWine, TheRateToPreferIsTheDefaultRenderEndpointsMixRate) {
  std::string error;
  const uint32_t sink_rate = LinuxSide::sink_rate(error);
  ASSERT_NE(sink_rate, 0u) << error;
  uint32_t mix_rate = 0;
  const CaptureError query =
      run_on_mta_thread([&mix_rate] { return default_render_mix_rate(mix_rate); });
  ASSERT_FALSE(query) << query.message << " / " << query.detail;
  EXPECT_EQ(mix_rate, sink_rate);  // winepulse mixes at the PulseAudio sink's rate
  auto backend = make_backend();
  ASSERT_FALSE(backend->open(testing::everything_but_us()));
  EXPECT_EQ(backend->preferred_format().rate, WasapiBackend::preferred_format_for(sink_rate).rate);
}

TEST_F(RealWasapiUnderWine, WinesSessionManagerCannotFollowAnApplicationAndSaysSo) {
  // wine 8's IAudioSessionManager2 (winepulse) answers RegisterSessionNotification and
  // GetSessionEnumerator with E_NOTIMPL: following by name cannot work under wine, and says
  // why; capturing by pid or name without following does not need it.
  uint32_t mix_rate = 0;
  ASSERT_FALSE(run_on_mta_thread([&mix_rate] { return default_render_mix_rate(mix_rate); }))
      << "no render endpoint: the session manager would not be asked";
  SessionWatch watch;
  const CaptureError error = watch.start([](const SessionEvent &) {});
  ASSERT_TRUE(error) << "wine reports audio sessions now: follow under wine for real";
  EXPECT_EQ(error.kind, ErrorKind::kBackendUnavailable);
  EXPECT_NE(error.message.find("on-target-exit=wait"), std::string::npos) << error.message;
  EXPECT_NE(error.detail.find("IAudioSessionManager2::RegisterSessionNotification"),
            std::string::npos)
      << error.detail;
  EXPECT_NE(error.detail.find("E_NOTIMPL"), std::string::npos) << error.detail;
  watch.stop();

  auto backend = make_backend();
  TargetSpec follow;
  follow.process_name = "wintone";
  follow.on_exit = OnTargetExit::kWait;
  const CaptureError open_error = backend->open(follow);
  EXPECT_EQ(open_error.kind, ErrorKind::kBackendUnavailable);
  EXPECT_EQ(open_error.message, error.message);
  EXPECT_EQ(backend->resolved_pid(), 0u);

  ChildProcess child;
  std::string why;
  ASSERT_TRUE(child.start(20000, why)) << why;
  TargetSpec by_pid;
  by_pid.pid = child.pid();
  const CaptureError pid_error = backend->open(by_pid);
  EXPECT_FALSE(pid_error) << pid_error.message << " / " << pid_error.detail;
  EXPECT_EQ(backend->resolved_pid(), child.pid());
}

TEST_F(RealWasapiUnderWine, TheWindowsTonePlayerIsHeardOnTheLinuxSide) {
  // wintone.exe renders through shared-mode WASAPI; under wine it is a PulseAudio client whose
  // Linux process is named after the .exe: pipewireprocsrc captures it by that name.
  TonePlayer player;
  TonePlayer::Options options;
  options.freq = 660;
  options.level_dbfs = -12;
  options.duration_ms = 20000;
  std::string error;
  ASSERT_TRUE(player.start(options, error)) << error;
  TonePlayer::Event started;
  ASSERT_TRUE(player.wait_event("started", started)) << "wintone.exe did not start playing";
  LinuxSide::Capture heard;
  ASSERT_TRUE(LinuxSide::capture("wintone.exe", 2.0, 660, kToneHz, heard, error)) << error;
  // Its tone at its amplitude, and nothing of another process. (Under load wine's render
  // path can drop out for a moment: the peak holds the played level then, the windowed
  // level reads a little low, and the fraction heard says how much was missing.)
  EXPECT_NEAR(heard.peak_dbfs, -12.0, 0.5);
  EXPECT_NEAR(heard.dominant_hz, 660, 5);
  EXPECT_GT(heard.audible, 0.5);
  EXPECT_LT(heard.other_dbfs, heard.level_dbfs - 40);
  ::testing::Test::RecordProperty("level_dbfs", std::to_string(heard.level_dbfs));
  ::testing::Test::RecordProperty("audible", std::to_string(heard.audible));
  player.request_exit();
  EXPECT_EQ(player.wait_exit(10000), 0);
  TonePlayer::Event exited;
  ASSERT_TRUE(player.wait_event("exit", exited));
  EXPECT_GT(exited.number("frames"), 0u);
}

// Last: the server goes away under a running capture (and comes back for what follows).
TEST_F(RealWasapiUnderWine, TheSessionEndingMidStreamIsACleanDeviceLostError) {
  const AudioFormat format{SampleFormat::kF32LE, 48000, 2};
  auto backend = make_backend();
  RecordingSink sink(format.bytes_per_frame());
  ASSERT_NO_FATAL_FAILURE(start(*backend, format, sink));
  ASSERT_TRUE(sink.wait_for_packets(10));
  std::string error;
  ASSERT_TRUE(LinuxSide::kill_pulse(error)) << error;
  const bool lost = sink.wait_for(Kind::kError, 1, milliseconds(10000));
  backend->stop();
  const bool restarted = LinuxSide::restart_pulse(error);
  ASSERT_TRUE(lost) << "no error within 10 s of the server's death";
  const auto errors = sink.calls_of(Kind::kError);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].error.kind, ErrorKind::kDeviceLost);
  EXPECT_NE(errors[0].error.detail.find("IAudioCaptureClient::GetBuffer failed: 0x88890004 "
                                        "(AUDCLNT_E_DEVICE_INVALIDATED"),
            std::string::npos)
      << errors[0].error.detail;
  EXPECT_EQ(sink.calls().back().kind, Kind::kError);  // nothing after it
  EXPECT_FALSE(backend->wake_counts().audio_event == 0);
  EXPECT_TRUE(restarted) << error;
}

}  // namespace
}  // namespace wasapi
}  // namespace procaudio
