// SPDX-License-Identifier: LGPL-2.1-or-later
// pipewireprocdeviceprovider (the plugin from this build) against the real session: real tone
// players and a paplay (PulseAudio) client are the applications; the provider's bus is what
// an application sees. Devices with the right pid, names and playing state; pausing a player
// changes it; a killed player's device goes and a new player's comes, each timed from the
// event on CLOCK_MONOTONIC; two streams are one device; a child shows as its parent; each
// device's element captures its application's tone and nothing else. (200 starts and stops,
// and AppList alone: test_pw_provider_cycles.cpp.)
// Fixture and environment: provider_watch.h, pw_fixture.h (the session, the players).
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/monotonic_clock.h"
#include "provider_watch.h"
#include "pw_fixture.h"

namespace procaudio {
namespace pwtest {
namespace {

// Channel 0 of the non-GAP audio that `device`'s element captures in a real pipeline, until
// `frames` of it came (or 8 s passed).
std::vector<float> capture_from(GstDevice *device, size_t frames) {
  struct Run {
    std::mutex mutex;
    std::condition_variable cond;
    std::vector<float> left;
  } run;
  GstElement *pipeline = gst_pipeline_new(nullptr);
  GstElement *src = gst_device_create_element(device, "src");
  GstElement *filter = gst_element_factory_make("capsfilter", nullptr);
  GstElement *sink = gst_element_factory_make("appsink", nullptr);
  EXPECT_NE(src, nullptr);
  if (src == nullptr) {
    gst_object_unref(pipeline);
    return {};
  }
  GstCaps *caps = gst_caps_from_string("audio/x-raw,format=F32LE,rate=48000,channels=2");
  g_object_set(filter, "caps", caps, nullptr);
  gst_caps_unref(caps);
  g_object_set(sink, "sync", FALSE, nullptr);
  gst_bin_add_many(GST_BIN(pipeline), src, filter, sink, nullptr);
  EXPECT_TRUE(gst_element_link_many(src, filter, sink, nullptr));
  GstAppSinkCallbacks callbacks = {};
  callbacks.new_sample = [](GstAppSink *appsink, gpointer data) {
    auto *r = static_cast<Run *>(data);
    GstSample *sample = gst_app_sink_pull_sample(appsink);
    GstBuffer *buffer = gst_sample_get_buffer(sample);
    GstMapInfo map;
    if (!GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_GAP) &&
        gst_buffer_map(buffer, &map, GST_MAP_READ)) {
      std::lock_guard<std::mutex> lock(r->mutex);
      const float *f = reinterpret_cast<const float *>(map.data);
      for (size_t i = 0; i + 1 < map.size / sizeof(float); i += 2) {
        r->left.push_back(f[i]);
      }
      gst_buffer_unmap(buffer, &map);
      r->cond.notify_all();
    }
    gst_sample_unref(sample);
    return GST_FLOW_OK;
  };
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &callbacks, &run, nullptr);
  EXPECT_NE(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  {
    std::unique_lock<std::mutex> lock(run.mutex);
    EXPECT_TRUE(
        run.cond.wait_for(lock, std::chrono::seconds(8), [&] { return run.left.size() >= frames; }))
        << "only " << run.left.size() << " frames captured";
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  std::lock_guard<std::mutex> lock(run.mutex);
  return run.left;
}

}  // namespace

Child *ProviderTest::paplay(double freq) {
  const char *paplay = "/usr/bin/paplay";
  if (access(paplay, X_OK) != 0) {
    ADD_FAILURE() << "paplay (Debian package pulseaudio-utils) is not installed";
    return nullptr;
  }
  const std::string wav = session_.dir() + "/tone" + std::to_string(int(freq)) + ".wav";
  write_tone_wav(wav, freq, 30);
  children_.push_back(std::make_unique<Child>());
  EXPECT_TRUE(children_.back()->spawn({paplay, wav}));
  return children_.back().get();
}

namespace {

guint pid_of(Child *child) {
  return static_cast<guint>(child->pid());
}

// The device of `pid` is shown and says it plays (or, with `playing` false, that it does not).
bool shows_playing(const std::map<guint, Shown> &d, guint pid, bool playing = true) {
  auto found = d.find(pid);
  return found != d.end() && (found->second.playing != FALSE) == playing;
}

TEST_F(ProviderTest, ThreeApplicationsPlayingAreThreeDevicesThatFollowPauseAndExit) {
  Child *alpha = play({"--freq", "440", "--name", "Alpha Player"});
  Child *beta = play({"--freq", "660", "--name", "Beta Player"});
  Child *pulse = paplay(880);
  ASSERT_NE(pulse, nullptr);
  Watch watch;
  ASSERT_NE(watch.provider(), nullptr) << "pipewireprocdeviceprovider is not registered";
  ASSERT_TRUE(watch.start());
  const guint a = pid_of(alpha), b = pid_of(beta), p = pid_of(pulse);
  auto all_playing = [&](const std::map<guint, Shown> &d) {
    return d.size() == 3 && shows_playing(d, a) && shows_playing(d, b) && shows_playing(d, p);
  };
  ASSERT_TRUE(watch.wait(all_playing, 5000)) << "not the three applications, playing";
  watch.wait(
      [&](const std::map<guint, Shown> &d) {
        const Shown &alpha_shown = d.at(a), &beta_shown = d.at(b), &pulse_shown = d.at(p);
        EXPECT_EQ(alpha_shown.name, "Alpha Player");
        EXPECT_EQ(alpha_shown.app_name, "Alpha Player");
        EXPECT_EQ(alpha_shown.process_name, "tone_player");
        EXPECT_EQ(beta_shown.name, "Beta Player");
        EXPECT_EQ(pulse_shown.name, "paplay");
        EXPECT_EQ(pulse_shown.process_name, "paplay");
        for (const Shown *s : {&alpha_shown, &beta_shown, &pulse_shown}) {
          EXPECT_EQ(s->api, "pipewire");
          EXPECT_EQ(s->streams, 1u) << s->name;
          std::printf("  device '%s': pid %u, process %s, application %s, %u stream(s), %s\n",
                      s->name.c_str(), s->pid, s->process_name.c_str(), s->app_name.c_str(),
                      s->streams, s->playing ? "playing" : "not playing");
        }
        EXPECT_EQ(d.count(static_cast<guint>(getpid())), 0u) << "the provider's own process";
        return true;
      },
      0);
  // The provider's own list is the same three.
  GList *listed = gst_device_provider_get_devices(watch.provider());
  EXPECT_EQ(g_list_length(listed), 3u);
  g_list_free_full(listed, gst_object_unref);

  // Paused (the player's pause: its stream inactive), then playing again: DEVICE_CHANGED.
  size_t from = watch.event_count();
  uint64_t sent = monotonic_now_ns(), changed = 0;
  ASSERT_EQ(kill(alpha->pid(), SIGUSR1), 0);
  ASSERT_TRUE(
      watch.wait([&](const std::map<guint, Shown> &d) { return shows_playing(d, a, false); }, 2000))
      << "pausing did not change playing";
  ASSERT_TRUE(watch.wait_event(GST_MESSAGE_DEVICE_CHANGED, a, 0, &changed, from));
  std::printf("  paused: DEVICE_CHANGED (playing=false) %.1f ms after the signal\n",
              (changed - sent) / 1e6);
  EXPECT_TRUE(watch.wait([&](const std::map<guint, Shown> &d) { return shows_playing(d, b); }, 0));
  from = watch.event_count();
  sent = monotonic_now_ns();
  ASSERT_EQ(kill(alpha->pid(), SIGUSR2), 0);
  ASSERT_TRUE(
      watch.wait([&](const std::map<guint, Shown> &d) { return shows_playing(d, a); }, 2000))
      << "resuming did not change playing";
  ASSERT_TRUE(watch.wait_event(GST_MESSAGE_DEVICE_CHANGED, a, 0, &changed, from));
  std::printf("  resumed: DEVICE_CHANGED (playing=true) %.1f ms after the signal\n",
              (changed - sent) / 1e6);

  // Killed: its device goes within 200 ms; the others stay.
  for (Child *victim : {beta, pulse}) {
    const guint pid = pid_of(victim);
    from = watch.event_count();
    const uint64_t killed = monotonic_now_ns();
    ASSERT_EQ(kill(victim->pid(), SIGKILL), 0);
    uint64_t removed = 0;
    ASSERT_TRUE(watch.wait_event(GST_MESSAGE_DEVICE_REMOVED, pid, 2000, &removed, from))
        << "no DEVICE_REMOVED for pid " << pid;
    const double ms = (removed - killed) / 1e6;
    std::printf("  pid %u killed: DEVICE_REMOVED %.1f ms after SIGKILL\n", pid, ms);
    EXPECT_LT(ms, 200.0);
  }
  EXPECT_TRUE(watch.wait([&](const std::map<guint, Shown> &d) { return d.size() == 1; }, 0));
}

TEST_F(ProviderTest, ALaterApplicationIsAddedWithin200msOfItsStream) {
  play({"--freq", "1000"});
  Watch watch;
  ASSERT_TRUE(watch.start());
  ASSERT_TRUE(watch.wait([](const std::map<guint, Shown> &d) { return d.size() == 1; }, 5000));
  const uint64_t spawned = monotonic_now_ns();
  Child *late = play({"--freq", "440"});
  const guint pid = pid_of(late);
  uint64_t added = 0;
  ASSERT_TRUE(watch.wait_event(GST_MESSAGE_DEVICE_ADDED, pid, 5000, &added));
  // The player's own CLOCK_MONOTONIC stamp of its stream starting to run.
  uint64_t streaming = 0;
  for (const std::string &line : late->lines()) {
    const size_t t = line.find(" t=");
    if (line.find(" streaming ") != std::string::npos && t != std::string::npos) {
      streaming = std::strtoull(line.c_str() + t + 3, nullptr, 10);
    }
  }
  ASSERT_NE(streaming, 0u);
  const double after_stream_ms =
      (static_cast<double>(added) - static_cast<double>(streaming)) / 1e6;
  std::printf(
      "  DEVICE_ADDED %.1f ms after the process was spawned, %+.1f ms from its stream "
      "running\n",
      (added - spawned) / 1e6, after_stream_ms);
  EXPECT_LT(after_stream_ms, 200.0);
  EXPECT_TRUE(
      watch.wait([&](const std::map<guint, Shown> &d) { return shows_playing(d, pid); }, 2000));
}

TEST_F(ProviderTest, TwoStreamsOfOneProcessAreOneDevice) {
  Child *player = play({"--freq", "440,660", "--streams", "2"}, 2);
  Watch watch;
  ASSERT_TRUE(watch.start());
  const guint pid = pid_of(player);
  ASSERT_TRUE(watch.wait(
      [&](const std::map<guint, Shown> &d) { return d.count(pid) && d.at(pid).streams == 2; },
      5000))
      << "not one device with two streams";
  EXPECT_TRUE(watch.wait([](const std::map<guint, Shown> &d) { return d.size() == 1; }, 0));
}

TEST_F(ProviderTest, AChildPlayingShowsAsItsParentOfTheSameExecutable) {
  // The parent plays nothing itself; its forked child (the same executable) plays.
  children_.push_back(std::make_unique<Child>());
  Child *parent = children_.back().get();
  ASSERT_TRUE(parent->spawn(tone_args({"--streams", "0", "--child", "550"})));
  ASSERT_TRUE(parent->wait_for_lines("role=child streaming", 1, 5000));
  const guint child = static_cast<guint>(parent->pid_of_role("child"));
  ASSERT_NE(child, 0u);
  Watch watch;
  ASSERT_TRUE(watch.start());
  const guint pid = pid_of(parent);
  ASSERT_TRUE(watch.wait([&](const std::map<guint, Shown> &d) { return d.count(pid) != 0; }, 5000))
      << "the parent " << pid << " is not listed for its child " << child;
  watch.wait(
      [&](const std::map<guint, Shown> &d) {
        EXPECT_EQ(d.size(), 1u);
        EXPECT_EQ(d.count(child), 0u);
        EXPECT_EQ(d.at(pid).streams, 1u);
        EXPECT_EQ(d.at(pid).process_name, "tone_player");
        return true;
      },
      0);
}

TEST_F(ProviderTest, EachDevicesElementCapturesOnlyItsApplication) {
  struct App {
    double freq;
    guint pid;
  };
  std::vector<App> apps;
  apps.push_back({440, pid_of(play({"--freq", "440"}))});
  apps.push_back({660, pid_of(play({"--freq", "660"}))});
  Child *pulse = paplay(880);
  ASSERT_NE(pulse, nullptr);
  apps.push_back({880, pid_of(pulse)});
  children_.push_back(std::make_unique<Child>());
  Child *parent = children_.back().get();
  ASSERT_TRUE(parent->spawn(tone_args({"--streams", "0", "--child", "1100"})));
  ASSERT_TRUE(parent->wait_for_lines("role=child streaming", 1, 5000));
  apps.push_back({1100, pid_of(parent)});
  Watch watch;
  ASSERT_TRUE(watch.start());
  ASSERT_TRUE(watch.wait([](const std::map<guint, Shown> &d) { return d.size() == 4; }, 5000));
  for (const App &app : apps) {
    GstDevice *device = watch.device(app.pid);
    ASSERT_NE(device, nullptr) << "no device for pid " << app.pid;
    // 0.3 s to let the links settle, then 1 s to analyse.
    const std::vector<float> left = capture_from(device, 48000 * 13 / 10);
    gst_object_unref(device);
    ASSERT_GE(left.size(), 48000u * 13 / 10);
    for (const App &other : apps) {
      const double level = level_db(left, 14400, 48000, other.freq);
      std::printf("  device of pid %u (%4.0f Hz): %4.0f Hz at %8.2f dBFS\n", app.pid, app.freq,
                  other.freq, level);
      if (other.freq == app.freq) {
        EXPECT_NEAR(level, db(kPlayedAmplitude), 1.0) << app.freq;
      } else {
        EXPECT_LT(level, kAbsentDb) << app.freq << " Hz device hears " << other.freq;
      }
    }
  }
}

}  // namespace
}  // namespace pwtest
}  // namespace procaudio

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int result = RUN_ALL_TESTS();
  gst_deinit();
  return result;
}
