// SPDX-License-Identifier: LGPL-2.1-or-later
// pipewireprocsrc in a real pipeline against the real session (the plugin from this build):
// process-name=X on-target-exit=wait started before X runs. What an application sees on the
// bus and in the buffers: a "waiting" message and GAP silence, a "capturing" message and X's
// tone, X killed ("exited", "waiting", GAP), X again with another tone; one timeline whose
// PTS never steps back, DISCONT exactly at each re-attachment, a distractor never heard.
// Fixture and environment: pw_fixture.h (the session, the players).
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "pw_fixture.h"

#ifndef TONE_PLAYER_PATH
#error "TONE_PLAYER_PATH must name the tone_player binary"
#endif

namespace procaudio {
namespace pwtest {
namespace {

struct Buffer {
  GstClockTime pts, duration;
  uint64_t offset, offset_end;
  bool discont, gap;
  size_t first;  // index of its first frame in CaptureRun::left
};

struct Target {
  std::string state, process_name;
  guint pid = 0, streams = 0;
  size_t buffers = 0;  // buffers that had arrived when it was posted
};

// What the appsink and the bus hand the test thread; guarded by `mutex`.
struct CaptureRun {
  std::mutex mutex;
  std::condition_variable cond;
  std::vector<Buffer> buffers;
  std::vector<float> left;  // channel 0 of every buffer
  std::vector<Target> targets;
  std::string error;

  template <typename Done>
  bool wait(Done done, int timeout_ms) {
    std::unique_lock<std::mutex> lock(mutex);
    return cond.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
      return done() || !error.empty();
    }) && error.empty();
  }
  // The index of the first message `state` (of `pid`, unless 0) from `from` on, or -1.
  int find(const std::string &state, guint pid, size_t from = 0) {
    for (size_t i = from; i < targets.size(); ++i) {
      if (targets[i].state == state && (pid == 0 || targets[i].pid == pid)) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }
  // Milliseconds of non-GAP audio from buffer `from` on.
  double audio_ms_from(size_t from) {
    double ms = 0;
    for (size_t i = from; i < buffers.size(); ++i) {
      ms += buffers[i].gap ? 0 : buffers[i].duration / 1e6;
    }
    return ms;
  }
};

GstFlowReturn on_sample(GstAppSink *sink, gpointer data) {
  auto *run = static_cast<CaptureRun *>(data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  GstBuffer *buffer = gst_sample_get_buffer(sample);
  GstMapInfo map;
  std::lock_guard<std::mutex> lock(run->mutex);
  Buffer b{GST_BUFFER_PTS(buffer),
           GST_BUFFER_DURATION(buffer),
           GST_BUFFER_OFFSET(buffer),
           GST_BUFFER_OFFSET_END(buffer),
           GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DISCONT),
           GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_GAP),
           run->left.size()};
  if (gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    const float *f = reinterpret_cast<const float *>(map.data);
    for (size_t i = 0; i + 1 < map.size / sizeof(float); i += 2) {
      run->left.push_back(f[i]);
    }
    gst_buffer_unmap(buffer, &map);
  }
  run->buffers.push_back(b);
  gst_sample_unref(sample);
  run->cond.notify_all();
  return GST_FLOW_OK;
}

GstBusSyncReply on_message(GstBus *, GstMessage *message, gpointer data) {
  auto *run = static_cast<CaptureRun *>(data);
  std::lock_guard<std::mutex> lock(run->mutex);
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ELEMENT &&
      gst_message_has_name(message, "procaudio-target")) {
    const GstStructure *s = gst_message_get_structure(message);
    Target t;
    t.state = gst_structure_get_string(s, "state");
    const char *name = gst_structure_get_string(s, "process-name");
    t.process_name = name != nullptr ? name : "";
    gst_structure_get_uint(s, "pid", &t.pid);
    gst_structure_get_uint(s, "streams", &t.streams);
    t.buffers = run->buffers.size();
    run->targets.push_back(t);
  } else if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
    GError *error = nullptr;
    gst_message_parse_error(message, &error, nullptr);
    run->error = error->message;
    g_error_free(error);
  }
  run->cond.notify_all();
  gst_message_unref(message);  // a sync handler that drops a message owns it
  return GST_BUS_DROP;
}

class PipeWireElementTest : public PipeWireBackendTest {};

TEST_F(PipeWireElementTest, FollowsAnApplicationAcrossARestart) {
  const std::string name = "pw_elem_" + std::to_string(getpid() % 100000);
  const std::string exe = session_.dir() + "/" + name;
  {
    std::ifstream in(TONE_PLAYER_PATH, std::ios::binary);
    std::ofstream out(exe, std::ios::binary);
    out << in.rdbuf();
  }
  ASSERT_EQ(chmod(exe.c_str(), 0755), 0);
  play({"--freq", "1000"});  // the distractor

  const std::string description =
      "pipewireprocsrc name=src process-name=" + name +
      " on-target-exit=wait ! audio/x-raw,format=F32LE,rate=48000,channels=2 ! "
      "appsink name=sink sync=false";
  GstElement *pipeline = gst_parse_launch(description.c_str(), nullptr);
  ASSERT_NE(pipeline, nullptr);
  CaptureRun run;
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  GstAppSinkCallbacks callbacks = {};
  callbacks.new_sample = on_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &callbacks, &run, nullptr);
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_set_sync_handler(bus, on_message, &run, nullptr);
  ASSERT_NE(gst_element_set_state(pipeline, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);

  auto spawn = [&](const char *freq) {
    children_.push_back(std::make_unique<Child>());
    EXPECT_TRUE(children_.back()->spawn({exe, "--freq", freq}));
    return children_.back().get();
  };
  int first_at = -1, exit_at = -1, wait_at = -1, second_at = -1;
  Child *first = nullptr, *second = nullptr;
  // Waiting, live: 30 GAP buffers.
  ASSERT_TRUE(
      run.wait([&] { return run.find("waiting", 0) == 0 && run.buffers.size() >= 30; }, 5000))
      << run.error;
  first = spawn("440");
  ASSERT_TRUE(run.wait(
      [&] {
        first_at = run.find("capturing", static_cast<guint>(first->pid()));
        return first_at >= 0 && run.audio_ms_from(run.targets[first_at].buffers) >= 600;
      },
      5000))
      << run.error;
  kill(first->pid(), SIGKILL);
  ASSERT_TRUE(run.wait(
      [&] {
        exit_at = run.find("exited", static_cast<guint>(first->pid()));
        wait_at = exit_at >= 0 ? run.find("waiting", 0, exit_at) : -1;
        return wait_at >= 0 && run.buffers.size() >= run.targets[wait_at].buffers + 30;
      },
      5000))
      << run.error;
  second = spawn("660");
  ASSERT_TRUE(run.wait(
      [&] {
        second_at = run.find("capturing", static_cast<guint>(second->pid()));
        return second_at >= 0 && run.audio_ms_from(run.targets[second_at].buffers) >= 600;
      },
      5000))
      << run.error;
  gst_element_set_state(pipeline, GST_STATE_NULL);
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  GstStructure *stats = nullptr;
  g_object_get(src, "stats", &stats, nullptr);
  guint64 reattachments = 0;
  ASSERT_TRUE(gst_structure_get_uint64(stats, "reattachments", &reattachments));
  gst_structure_free(stats);
  gst_object_unref(src);
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  gst_object_unref(bus);
  gst_object_unref(sink);
  gst_object_unref(pipeline);

  std::lock_guard<std::mutex> lock(run.mutex);
  // The messages, one per change, each naming the application.
  std::vector<std::string> changes;
  for (const Target &t : run.targets) {
    EXPECT_EQ(t.process_name, name);
    const std::string change = t.state + " " + std::to_string(t.pid);
    if (changes.empty() || changes.back() != change) {
      changes.push_back(change);
      EXPECT_EQ(t.streams, t.state == "capturing" ? 1u : 0u) << change;
    }
  }
  const std::vector<std::string> expected = {"waiting 0",
                                             "capturing " + std::to_string(first->pid()),
                                             "exited " + std::to_string(first->pid()), "waiting 0",
                                             "capturing " + std::to_string(second->pid())};
  EXPECT_EQ(changes, expected);
  // One timeline: no offset hole, PTS contiguous but at a re-attachment (under a frame, never
  // back); DISCONT at the start and at the first sound of each process.
  std::vector<size_t> disconts;
  for (size_t i = 0; i < run.buffers.size(); ++i) {
    const Buffer &b = run.buffers[i];
    if (b.discont) {
      disconts.push_back(i);
    }
    if (i == 0) {
      continue;
    }
    const Buffer &p = run.buffers[i - 1];
    EXPECT_EQ(b.offset, p.offset_end) << "buffer " << i;
    const GstClockTimeDiff step = GST_CLOCK_DIFF(p.pts + p.duration, b.pts);
    EXPECT_TRUE(b.discont ? step >= 0 && step <= static_cast<GstClockTimeDiff>(GST_MSECOND)
                          : step == 0)
        << "PTS step " << step << " at buffer " << i;
  }
  ASSERT_EQ(disconts.size(), 3u);
  EXPECT_EQ(disconts[0], 0u);
  EXPECT_EQ(reattachments, 2u);
  for (size_t k : {size_t{1}, size_t{2}}) {
    EXPECT_FALSE(run.buffers[disconts[k]].gap);
    EXPECT_TRUE(run.buffers[disconts[k] - 1].gap);
  }
  for (size_t i = 0; i < disconts[1]; ++i) {
    ASSERT_TRUE(run.buffers[i].gap) << "sound before the first process, buffer " << i;
  }
  for (size_t i = run.targets[exit_at].buffers + 1; i < disconts[2]; ++i) {
    ASSERT_TRUE(run.buffers[i].gap) << "sound while waiting, buffer " << i;
  }
  // Each process's tone, not the other's, nor the distractor's (0.4 s from 100 ms in).
  const size_t a = run.buffers[disconts[1]].first + 4800, b = run.buffers[disconts[2]].first + 4800;
  EXPECT_NEAR(level_db(run.left, a, 19200, 440), db(kPlayedAmplitude), 1.0);
  EXPECT_NEAR(level_db(run.left, b, 19200, 660), db(kPlayedAmplitude), 1.0);
  EXPECT_LT(level_db(run.left, a, 19200, 660), kAbsentDb);
  EXPECT_LT(level_db(run.left, b, 19200, 440), kAbsentDb);
  EXPECT_LT(level_db(run.left, a, 19200, 1000), kAbsentDb);
  EXPECT_LT(level_db(run.left, b, 19200, 1000), kAbsentDb);
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
