// SPDX-License-Identifier: LGPL-2.1-or-later
// wasapi-real, time: the player's pause (GAP or silence for its length, nothing else), its
// exit (EOS within 500 ms, the WAV finalised), PLAYING <-> PAUSED cycles, a 60 s run (drift,
// resyncs, lag), what Initialize accepts per format at the backend, and a self-check of the
// suite's own measuring with GStreamer's audiotestsrc. main() writes the report.
#include <glib/gstdio.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "real_windows.h"
#include "test_support.h"
#include "tone_analysis.h"
#include "wasapi/com_thread.h"
#include "wasapi/endpoints.h"
#include "wasapi/wasapi_backend.h"

namespace procaudio {
namespace wasapi {
namespace testing {
namespace {

// A file in %TEMP% removed however the test ends.
class TempFile {
 public:
  TempFile() {
    char dir[MAX_PATH + 1];
    const DWORD n = GetTempPathA(MAX_PATH + 1, dir);
    static int counter = 0;
    path_ = std::string(dir, n) + "procaudio-real-" + std::to_string(GetCurrentProcessId()) + "-" +
            std::to_string(++counter) + ".wav";
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string &path() const { return path_; }
  // As a GStreamer property: forward slashes survive gst_parse_launch.
  std::string for_pipeline() const {
    std::string p = path_;
    std::replace(p.begin(), p.end(), '\\', '/');
    return p;
  }

 private:
  std::string path_;
};

// The longest run of GAP or silent buffers between two sounding ones: [first, last).
struct Silence {
  GstClockTime start = GST_CLOCK_TIME_NONE;
  GstClockTime end = GST_CLOCK_TIME_NONE;
  size_t gap_buffers = 0;
  size_t silent_buffers = 0;
  GstClockTime length() const { return GST_CLOCK_TIME_IS_VALID(start) ? end - start : 0; }
};
Silence longest_inner_silence(const std::vector<CapturedBuffer> &buffers) {
  Silence best, current;
  bool sounded = false;
  for (const CapturedBuffer &b : buffers) {
    if (b.gap || b.silent) {
      if (sounded) {
        if (!GST_CLOCK_TIME_IS_VALID(current.start)) {
          current = {b.pts, b.pts, 0, 0};
        }
        current.end = b.pts + b.duration;
        (b.gap ? current.gap_buffers : current.silent_buffers)++;
      }
      continue;
    }
    if (GST_CLOCK_TIME_IS_VALID(current.start) && current.length() > best.length()) {
      best = current;
    }
    current = {};
    sounded = true;
  }
  return best;
}

TEST_F(WasapiReal, ThePlayersPauseIsSilenceForItsLengthAndItsExitEndsTheFile) {
  // 3 s of tone first: the capture (activation, Initialize, Start) is running long before.
  constexpr uint32_t kPauseMs = 1500;
  TonePlayer player;
  TonePlayer::Options o = tone(kTargetHz, 5000);
  o.pause_after_ms = 3000;
  o.pause_ms = kPauseMs;
  ASSERT_NO_FATAL_FAILURE(start_player(player, o));
  const TempFile wav;
  const std::string description =
      "wasapiprocsrc name=src " + pid_prop(player.pid()) + " ! " +
      caps_of({SampleFormat::kF32LE, 48000, 2}) +
      " ! tee name=t t. ! queue ! appsink name=sink sync=false max-buffers=0 t. ! queue ! "
      "wavenc ! filesink location=\"" +
      wav.for_pipeline() + "\"";
  const CaptureRun run = run_capture(description, 20000);
  JsonObject j = scenario_json("pause-and-exit", run);
  if (!ran_for_real(run, j)) {
    return;
  }
  ASSERT_TRUE(run.eos) << "no EOS within 20 s of a player that plays 6.5 s";
  TonePlayer::Event paused, resumed, exited;
  ASSERT_TRUE(player.wait_event("paused", paused));
  ASSERT_TRUE(player.wait_event("resumed", resumed));
  ASSERT_TRUE(player.wait_event("exit", exited));

  // PTS continuous throughout: the pause is filled, not skipped.
  EXPECT_EQ(continuity_problems(run.buffers), "");
  size_t disconts = 0;
  for (const auto &b : run.buffers) {
    disconts += b.discont ? 1 : 0;
  }
  EXPECT_EQ(disconts, 1u);
  // The pause is one stretch of silence as long as the player was stopped. Process loopback
  // sends nothing while the target's stream is stopped (the element fills it with GAP), or
  // silent packets (data, no GAP): the report says which.
  const Silence pause = longest_inner_silence(run.buffers);
  ASSERT_TRUE(GST_CLOCK_TIME_IS_VALID(pause.start)) << "no silence between two sounds";
  ASSERT_GE(pause.start, run.first_sound() + GstClockTime{1000} * GST_MSECOND)
      << "less than a second of the tone was captured before the pause";
  const double pause_ms = static_cast<double>(pause.length()) / GST_MSECOND;
  const double played_pause_ms =
      static_cast<double>(resumed.number("qpc") - paused.number("qpc")) / 10'000.0;
  // The player stops its client after its last period has played, and the first buffer after
  // Start() comes a period later: the silence heard is the pause plus up to about three
  // periods, and the element's whole chunks take up to two off.
  EXPECT_NEAR(pause_ms, played_pause_ms, 50.0);
  EXPECT_NEAR(played_pause_ms, kPauseMs, 100.0);
  // GAP nowhere else while the target played.
  const GstClockTime first = run.first_sound();
  GstClockTime last_sound = 0;
  for (const auto &b : run.buffers) {
    if (!b.gap && !b.silent) {
      last_sound = b.pts;
    }
  }
  for (const auto &b : run.buffers) {
    if (b.gap && b.pts > first && b.pts < last_sound) {
      EXPECT_TRUE(b.pts >= pause.start && b.pts < pause.end)
          << "GAP at " << b.pts << " outside the pause [" << pause.start << ", " << pause.end
          << ")";
    }
  }
  // EOS within 500 ms of the player's exit; the file finalised, every frame in it.
  const double eos_after_exit_ms =
      (static_cast<double>(run.eos_mono_ns) - static_cast<double>(exited.number("qpc")) * 100) /
      1e6;
  EXPECT_GE(eos_after_exit_ms, 0.0);
  EXPECT_LE(eos_after_exit_ms, 500.0);
  std::string why;
  const int64_t wav_frames = finalised_wav_frames(wav.path(), why);
  uint64_t frames = 0;
  for (const auto &b : run.buffers) {
    frames += b.offset_end - b.offset;
  }
  EXPECT_EQ(wav_frames, static_cast<int64_t>(frames)) << why;
  j.set("pause_ms", pause_ms)
      .set("played_pause_ms", played_pause_ms)
      .set("pause_error_ms", pause_ms - played_pause_ms)
      .set("pause_gap_buffers", static_cast<uint64_t>(pause.gap_buffers))
      .set("pause_silent_buffers", static_cast<uint64_t>(pause.silent_buffers))
      .set("silence_kind", pause.gap_buffers > 0 && pause.silent_buffers == 0   ? "gap"
                           : pause.silent_buffers > 0 && pause.gap_buffers == 0 ? "silent-data"
                                                                                : "mixed")
      .set("eos_after_exit_ms", eos_after_exit_ms)
      .set("wav_frames", wav_frames);
  RealReport::get().add_scenario(j);
}

TEST_F(WasapiReal, PlayingPausedCyclesResumeTheCapture) {
  // PLAYING -> PAUSED -> PLAYING three times, after 1.2 s of audio each: each resume is a
  // fresh stream (its first buffer DISCONT) that hears the target again.
  int resumes = 0;
  size_t seen = 0;
  bool awaiting_new_stream = true;  // until the first DISCONT of the stream started last
  GstClockTime segment_start = GST_CLOCK_TIME_NONE;
  std::vector<GstClockTime> segments;  // the first sound of each PLAYING stretch
  const auto step = [&](CaptureRun &run, GstElement *pipeline) {
    for (; seen < run.buffers.size(); ++seen) {
      const CapturedBuffer &b = run.buffers[seen];
      if (awaiting_new_stream) {
        if (!b.discont) {
          continue;  // still the old stream, in flight when it was paused
        }
        awaiting_new_stream = false;  // (a later DISCONT would be a resync, counted)
      }
      if (!GST_CLOCK_TIME_IS_VALID(segment_start) && !b.gap && !b.silent) {
        segment_start = b.pts;
        segments.push_back(b.pts);
      }
      if (GST_CLOCK_TIME_IS_VALID(segment_start) && b.pts >= segment_start + 1200 * GST_MSECOND) {
        if (resumes == 3) {
          return true;
        }
        gst_element_set_state(pipeline, GST_STATE_PAUSED);
        gst_element_set_state(pipeline, GST_STATE_PLAYING);
        ++resumes;
        segment_start = GST_CLOCK_TIME_NONE;
        awaiting_new_stream = true;
      }
    }
    return false;
  };
  const CaptureRun run = run_capture(
      capture_description(pid_prop(target_->pid()), caps_of({SampleFormat::kF32LE, 48000, 2})),
      30000, step);
  JsonObject j = scenario_json("playing-paused-cycles", run);
  if (!ran_for_real(run, j)) {
    return;
  }
  EXPECT_EQ(resumes, 3);
  size_t disconts = 0;
  for (const auto &b : run.buffers) {
    disconts += b.discont ? 1 : 0;
  }
  // The start and each resume, and any resync the element counted (stats last across
  // PLAYING <-> PAUSED: they are reset at READY -> PAUSED only).
  const uint64_t resyncs = run.stats.count("resyncs") ? run.stats.at("resyncs") : 0;
  EXPECT_EQ(disconts, 4 + resyncs);
  EXPECT_EQ(disconts, run.stats.count("discontinuities") ? run.stats.at("discontinuities") : 0);
  ASSERT_EQ(segments.size(), 4u);
  std::vector<double> levels;
  for (GstClockTime start : segments) {
    levels.push_back(level_in(run, kTargetHz, 0, start));
    EXPECT_NEAR(levels.back(), kPlayedDb, kLevelToleranceDbReal);
  }
  j.set("resumes", static_cast<int64_t>(resumes)).set("segment_levels_dbfs_first", levels.front());
  RealReport::get().add_scenario(j);
}

TEST_F(WasapiReal, SixtySecondsStayAlignedWithTheDeviceClock) {
  const auto step = [](CaptureRun &run, GstElement *) {
    return run.buffers.back().pts >= run.buffers.front().pts + 60 * GST_SECOND;
  };
  const CaptureRun run = run_capture(
      capture_description(pid_prop(target_->pid()), caps_of({SampleFormat::kF32LE, 48000, 2})),
      90000, step);
  JsonObject j = scenario_json("sixty-seconds", run);
  if (!ran_for_real(run, j)) {
    return;
  }
  ASSERT_FALSE(run.buffers.empty());
  EXPECT_GE(run.buffers.back().pts - run.buffers.front().pts, GstClockTime{59} * GST_SECOND);
  // Arrival at the appsink after the buffer's end: the lag a user sees. Its best case per
  // 10 s window tracks the device clock against the pipeline's; its change is the drift.
  std::vector<double> lags;
  std::vector<double> best_per_window(7, 1e18);
  for (const auto &b : run.buffers) {
    const double lag_ms =
        (static_cast<double>(b.arrival) - static_cast<double>(b.pts + b.duration)) / 1e6;
    lags.push_back(lag_ms);
    const size_t window =
        static_cast<size_t>((b.pts - run.buffers.front().pts) / (10 * GST_SECOND));
    if (window < best_per_window.size()) {
      best_per_window[window] = std::min(best_per_window[window], lag_ms);
    }
  }
  const double drift_ms = best_per_window[5] - best_per_window[0];
  const uint64_t resyncs = run.stats.count("resyncs") ? run.stats.at("resyncs") : 0;
  size_t disconts = 0;
  for (const auto &b : run.buffers) {
    disconts += b.discont ? 1 : 0;
  }
  // The sample clock against QPC: frames delivered over the time they took to arrive.
  const CapturedBuffer &first = run.buffers.front(), &last = run.buffers.back();
  const double seconds = static_cast<double>(last.arrival_mono_ns - first.arrival_mono_ns) / 1e9;
  const double ppm =
      (static_cast<double>(last.offset - first.offset) / run.format.rate / seconds - 1.0) * 1e6;
  EXPECT_EQ(continuity_problems(run.buffers), "");
  // A minute of one steady tone needs no resync: one would mean that the device times and
  // the frames disagree by 40 ms, over 650 ppm.
  EXPECT_EQ(resyncs, 0u);
  EXPECT_EQ(disconts, 1u);
  EXPECT_LT(std::abs(drift_ms), 40.0);  // the alignment threshold
  EXPECT_EQ(run.stats.count("frames-dropped") ? run.stats.at("frames-dropped") : 1, 0u);
  j.set("drift_ms", drift_ms)
      .set("sample_clock_ppm", ppm)
      .set("resyncs", resyncs)
      .set("discontinuities", static_cast<uint64_t>(disconts))
      .set("lag_ms", JsonObject()
                         .set("p50", percentile(lags, 50))
                         .set("p99", percentile(lags, 99))
                         .set("max", percentile(lags, 100)));
  RealReport::get().add_scenario(j);
}

// What Initialize accepts, per format, at the backend: the variant, the packets' sizes and
// how old they are when they arrive (arrival - QPC device time).
TEST_F(WasapiReal, TheBackendInitializesEveryFormatTheElementOffers) {
  uint32_t mix_rate = 0;
  const CaptureError mix = run_on_mta_thread([&] { return default_render_mix_rate(mix_rate); });
  RealReport::get().header().set("default_render_mix_rate", static_cast<uint64_t>(mix_rate));
  if (mix) {
    RealReport::get().note_hresults(mix.detail);
  }
  for (SampleFormat sf : {SampleFormat::kF32LE, SampleFormat::kS16LE}) {
    for (uint32_t rate : {44100u, 48000u}) {
      for (uint32_t channels : {1u, 2u}) {
        const AudioFormat format{sf, rate, channels};
        JsonObject j;
        j.set("format", sample_format_name(sf))
            .set("rate", static_cast<uint64_t>(rate))
            .set("channels", static_cast<uint64_t>(channels));
        WasapiBackend backend;
        TargetSpec target;
        target.pid = target_->pid();
        const CaptureError open_error = backend.open(target);
        if (open_error) {
          RealReport::get().note_hresults(open_error.detail);
          j.set("open_error", open_error.message + " (" + open_error.detail + ")");
          RealReport::get().add_format(j);
          if (mode() == Mode::kWindows) {
            ADD_FAILURE() << open_error.message << " / " << open_error.detail;
          } else {
            EXPECT_EQ(open_error.kind, mode() == Mode::kWine ? ErrorKind::kBackendUnavailable
                                                             : ErrorKind::kUnsupportedOs);
          }
          continue;
        }
        RecordingSink sink(format.bytes_per_frame());
        CaptureConfig config;
        config.format = format;
        const CaptureError start_error = backend.start(config, sink);
        if (start_error) {
          RealReport::get().note_hresults(start_error.detail);
          j.set("initialize", "refused").set("error", start_error.detail);
          RealReport::get().add_format(j);
          ADD_FAILURE() << "the element offers " << caps_of(format)
                        << " but Windows refused it: " << start_error.detail;
          continue;
        }
        sink.wait_for_packets(100, std::chrono::milliseconds(5000));
        backend.stop();
        std::vector<double> ages;
        uint64_t frames = 0, silent = 0, timestamp_errors = 0;
        const auto packets = sink.calls_of(RecordingSink::Kind::kPacket);
        for (const auto &c : packets) {
          ages.push_back((static_cast<double>(c.packet.arrival_time_ns) -
                          static_cast<double>(c.packet.device_time_ns)) /
                         1e6);
          frames += c.packet.frames;
          silent += (c.packet.flags & kPacketSilent) ? 1 : 0;
          timestamp_errors += (c.packet.flags & kPacketTimestampError) ? 1 : 0;
        }
        // What was delivered, measured: frames over the device time they span.
        double delivered_rate = 0;
        if (packets.size() >= 2) {
          const double span_s = static_cast<double>(packets.back().packet.device_time_ns -
                                                    packets.front().packet.device_time_ns) /
                                1e9;
          delivered_rate = static_cast<double>(frames - packets.back().packet.frames) / span_s;
        }
        j.set("initialize", "accepted")
            .set("variant", backend.initialize_variant())
            .set("packets", static_cast<uint64_t>(ages.size()))
            .set(
                "mean_packet_frames",
                ages.empty() ? 0.0 : static_cast<double>(frames) / static_cast<double>(ages.size()))
            .set("delivered_rate", delivered_rate)
            .set("silent_packets", silent)
            .set("timestamp_error_packets", timestamp_errors)
            .set("arrival_minus_device_ms", JsonObject()
                                                .set("p50", percentile(ages, 50))
                                                .set("p99", percentile(ages, 99))
                                                .set("max", percentile(ages, 100)));
        RealReport::get().add_format(j);
        EXPECT_NEAR(delivered_rate, rate, rate * 0.02) << caps_of(format);
        EXPECT_GE(ages.size(), 50u) << caps_of(format) << ": too few packets in 5 s";
        EXPECT_EQ(sink.count(RecordingSink::Kind::kError), 0u) << caps_of(format);
      }
    }
  }
}

// The suite's own measuring, against GStreamer's audiotestsrc (in every mode): a run's
// buffers, its continuity, a tone's level, the WAV a muxer finalised. A broken harness would
// make every Windows scenario meaningless.
TEST(WasapiRealHarness, MeasuresAKnownLiveSourceRight) {
  const TempFile wav;
  const std::string description =
      "audiotestsrc name=src is-live=true wave=sine freq=1000 volume=0.25 num-buffers=50 "
      "samplesperbuffer=480 ! audio/x-raw,format=F32LE,rate=48000,channels=2 ! tee name=t t. ! "
      "queue ! appsink name=sink sync=false max-buffers=0 t. ! queue ! wavenc ! filesink "
      "location=\"" +
      wav.for_pipeline() + "\"";
  const CaptureRun run = run_capture(description, 20000);
  ASSERT_TRUE(run.reached_playing && !run.error.posted)
      << run.error.message << " / " << run.error.debug;
  ASSERT_TRUE(run.eos);
  ASSERT_EQ(run.buffers.size(), 50u);
  EXPECT_EQ(continuity_problems(run.buffers), "");
  EXPECT_NEAR(level_in(run, 1000, 0, 0), -12.04, 0.1);
  EXPECT_LT(level_in(run, 3000, 0, 0), -80);
  std::string why;
  EXPECT_EQ(finalised_wav_frames(wav.path(), why), 50 * 480) << why;
  std::vector<CapturedBuffer> broken = run.buffers;
  broken[10].pts += GST_MSECOND;
  EXPECT_NE(continuity_problems(broken), "");  // and it notices a step

  // The pause finder: sound, then 5 GAP and 2 silent buffers, sound again; the silence at
  // the end (after the last sound) is not a pause.
  std::vector<CapturedBuffer> paused(12);
  for (size_t i = 0; i < paused.size(); ++i) {
    paused[i].pts = i * 10 * GST_MSECOND;
    paused[i].duration = 10 * GST_MSECOND;
    paused[i].gap = i >= 3 && i < 8;
    paused[i].silent = paused[i].gap || i == 8 || i == 9 || i == 11;
  }
  const Silence pause = longest_inner_silence(paused);
  EXPECT_EQ(pause.start, GstClockTime{30} * GST_MSECOND);
  EXPECT_EQ(pause.length(), GstClockTime{70} * GST_MSECOND);
  EXPECT_EQ(pause.gap_buffers, 5u);
  EXPECT_EQ(pause.silent_buffers, 2u);
}

}  // namespace
}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio

namespace {

// Lines of the element's and the backend's log worth the report: the HRESULTs, the accepted
// Initialize variant.
void collect_log(GstDebugCategory *category, GstDebugLevel level, const gchar *, const gchar *,
                 gint, GObject *, GstDebugMessage *message, gpointer) {
  if (std::string(gst_debug_category_get_name(category)) != "wasapiprocsrc") {
    return;
  }
  const char *text = gst_debug_message_get(message);
  if (text == nullptr) {
    return;
  }
  const std::string line = text;
  auto &report = procaudio::wasapi::testing::RealReport::get();
  report.note_hresults(line);
  if (level <= GST_LEVEL_WARNING || line.find("audio client initialized") != std::string::npos ||
      line.find("refused") != std::string::npos) {
    report.note_line(line);
  }
}

std::string native_path(const char *path);

// Writes the report after every test, so that a crash later still leaves one.
class ReportWriter final : public ::testing::EmptyTestEventListener {
 public:
  explicit ReportWriter(std::string path) : path_(std::move(path)) {}
  void OnTestEnd(const ::testing::TestInfo &) override { write(); }
  bool write() {
    std::string why;
    if (!procaudio::wasapi::testing::RealReport::get().write(path_, why)) {
      std::fprintf(stderr, "wasapi-real: %s\n", why.c_str());
      return false;
    }
    return true;
  }
  const std::string &path() const { return path_; }

 private:
  std::string path_;
};

std::string native_path(const char *path) {
  std::string p = path != nullptr ? path : "";
  if (!p.empty() && p[0] == '/') {
    p = "Z:" + p;  // a unix path under wine
  }
  return p;
}

}  // namespace

int main(int argc, char **argv) {
  using procaudio::wasapi::testing::RealReport;
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const procaudio::wasapi::WindowsVersion v = procaudio::wasapi::testing::windows_version();
  const std::string version =
      std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.build);
  const char *mode = procaudio::wasapi::testing::mode_name();
  std::printf("wasapi-real: mode %s, Windows %s: %s\n", mode, version.c_str(),
              std::string(mode) == "windows"
                  ? "real process-loopback capture of real players"
                  : "no process loopback here: every scenario asserts the clean error");
  std::fflush(stdout);

  GError *error = nullptr;
  GstPlugin *plugin =
      gst_plugin_load_file(native_path(std::getenv("PROCAUDIO_PLUGIN")).c_str(), &error);
  if (plugin == nullptr) {
    std::fprintf(stderr, "wasapi-real: cannot load the plugin (PROCAUDIO_PLUGIN): %s\n",
                 error != nullptr ? error->message : "?");
    return 1;
  }
  gst_debug_set_threshold_for_name("wasapiprocsrc", GST_LEVEL_INFO);
  gst_debug_add_log_function(collect_log, nullptr, nullptr);

  RealReport::get()
      .header()
      .set("mode", mode)
      .set("windows", version)
      .set("gstreamer", gst_version_string())
      .set("plugin", gst_plugin_get_filename(plugin));
  const char *report_env = std::getenv("PROCAUDIO_REPORT");
  auto *writer =
      new ReportWriter(native_path(report_env != nullptr ? report_env : "wasapi-real-report.json"));
  ::testing::UnitTest::GetInstance()->listeners().Append(writer);  // owned by gtest
  const int result = RUN_ALL_TESTS();
  RealReport::get().header().set("passed", result == 0);
  if (writer->write()) {
    std::printf("wasapi-real: report written to %s\n", writer->path().c_str());
  }
  gst_debug_remove_log_function(collect_log);
  gst_object_unref(plugin);
  gst_deinit();
  return result;
}
