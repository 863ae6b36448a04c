// SPDX-License-Identifier: LGPL-2.1-or-later
// GstProcAudioSrc and its target, through the scripted backend: the "procaudio-target"
// messages a backend's state changes become, a re-attachment to a new process (one DISCONT,
// PTS never back, counted), and reference timestamps.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "capture_fixture.h"

using element_testing::Buf;
using element_testing::Capture;
using element_testing::kMs;
using element_testing::scenario;
using Phase = procaudio::TargetState::Phase;

namespace {

struct TargetMessage {
  std::string state;
  guint pid = 0;
  std::string process_name;
  guint streams = 0;
};

// The "procaudio-target" messages on the bus up to EOS (or an error), in order.
std::vector<TargetMessage> target_messages_until_eos(Capture &c) {
  std::vector<TargetMessage> out;
  for (;;) {
    GstMessage *msg = c.wait_message(
        static_cast<GstMessageType>(GST_MESSAGE_ELEMENT | GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    if (msg == nullptr) {
      ADD_FAILURE() << "no EOS";
      return out;
    }
    if (GST_MESSAGE_TYPE(msg) != GST_MESSAGE_ELEMENT) {
      gst_message_unref(msg);
      return out;
    }
    const GstStructure *s = gst_message_get_structure(msg);
    if (gst_structure_has_name(s, "procaudio-target")) {
      TargetMessage m;
      m.state = gst_structure_get_string(s, "state");
      gst_structure_get_uint(s, "pid", &m.pid);
      const char *name = gst_structure_get_string(s, "process-name");
      m.process_name = name != nullptr ? name : "";
      gst_structure_get_uint(s, "streams", &m.streams);
      EXPECT_EQ(GST_MESSAGE_SRC(msg), GST_OBJECT(c.src()));
      out.push_back(m);
    }
    gst_message_unref(msg);
  }
}

}  // namespace

TEST(Target, EveryStateChangeIsAMessageNamingTheApplication) {
  auto s = scenario();
  s->state(Phase::kWaiting, 0, 0)
      .idle(100 * kMs, 10 * kMs)
      .state(Phase::kCapturing, 4242, 1)
      .packets(10, {480})
      .state(Phase::kCapturing, 4242, 2)  // a second stream of the same process
      .packets(10, {480})
      .state(Phase::kExited, 4242, 0)
      .exit();
  Capture c(s, "", "process-name=zoom on-target-exit=wait");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  c.pull();
  const std::vector<TargetMessage> m = target_messages_until_eos(c);
  ASSERT_EQ(m.size(), 4u);
  const char *states[] = {"waiting", "capturing", "capturing", "exited"};
  const guint pids[] = {0, 4242, 4242, 4242};
  const guint streams[] = {0, 1, 2, 0};
  for (size_t i = 0; i < m.size(); ++i) {
    EXPECT_EQ(m[i].state, states[i]) << i;
    EXPECT_EQ(m[i].pid, pids[i]) << i;
    EXPECT_EQ(m[i].streams, streams[i]) << i;
    EXPECT_EQ(m[i].process_name, "zoom") << i;
  }
}

TEST(Target, EachStateIsPostedWithTheAudioItDescribesNotAhead) {
  // The backend reports everything at once (unpaced), far ahead of a consumer that takes one
  // buffer at a time: "exited" must not reach the application while the exited process's
  // audio is still queued, nor "capturing" for the next process before its first buffer.
  auto s = scenario();
  s->state(Phase::kCapturing, 1001, 1)
      .packets(40, {480})
      .state(Phase::kExited, 1001, 0)
      .state(Phase::kWaiting, 0, 0)
      .idle(100 * kMs, 10 * kMs)
      .state(Phase::kCapturing, 1002, 1)
      .packets(40, {480})
      .exit();
  Capture c(s, "", "process-name=player on-target-exit=wait buffer-time=60000000", "max-buffers=1");
  // What the streaming thread does, in its order: messages posted, buffers pushed.
  struct Event {
    bool message;
    std::string state;
    guint64 offset, offset_end;
  };
  struct Log {
    std::mutex mutex;
    std::vector<Event> events;
  } log;
  GstBus *bus = gst_element_get_bus(c.pipeline());
  gst_bus_set_sync_handler(
      bus,
      [](GstBus *, GstMessage *msg, gpointer data) {
        const GstStructure *st = gst_message_get_structure(msg);
        if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ELEMENT &&
            gst_structure_has_name(st, "procaudio-target")) {
          auto *l = static_cast<Log *>(data);
          guint64 offset = G_MAXUINT64;
          gst_structure_get_uint64(st, "offset", &offset);
          std::lock_guard<std::mutex> lock(l->mutex);
          l->events.push_back({true, gst_structure_get_string(st, "state"), offset, 0});
        }
        return GST_BUS_PASS;
      },
      &log, nullptr);
  GstPad *pad = gst_element_get_static_pad(c.src(), "src");
  gst_pad_add_probe(
      pad, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad *, GstPadProbeInfo *info, gpointer data) {
        auto *l = static_cast<Log *>(data);
        GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
        std::lock_guard<std::mutex> lock(l->mutex);
        l->events.push_back({false, "", GST_BUFFER_OFFSET(b), GST_BUFFER_OFFSET_END(b)});
        return GST_PAD_PROBE_OK;
      },
      &log, nullptr);
  gst_object_unref(pad);
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  const std::vector<Buf> bufs = c.pull();
  c.set_state(GST_STATE_NULL);
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  gst_object_unref(bus);

  std::vector<std::pair<std::string, guint64>> states;
  guint64 pushed_end = 0;  // offset_end of the last buffer pushed before
  for (size_t i = 0; i < log.events.size(); ++i) {
    const Event &e = log.events[i];
    if (!e.message) {
      pushed_end = e.offset_end;
      continue;
    }
    states.emplace_back(e.state, e.offset);
    // Not behind: every buffer pushed before it ends at or before where the state holds...
    EXPECT_LE(pushed_end, e.offset) << e.state << " posted behind its audio";
    // ...and not ahead: the next buffer pushed is the one it holds in.
    size_t next = i + 1;
    while (next < log.events.size() && log.events[next].message) {
      ++next;
    }
    ASSERT_LT(next, log.events.size()) << e.state << ": no buffer after it";
    EXPECT_LE(log.events[next].offset, e.offset) << e.state << " posted behind its audio";
    EXPECT_GT(log.events[next].offset_end, e.offset) << e.state << " posted ahead of its audio";
  }
  // The exited process's 40 packets of 480 frames came before "exited"; the next process's
  // "capturing" holds from the end of the wait, which the GAP buffers filled.
  ASSERT_EQ(states.size(), 4u);
  EXPECT_EQ(states[0], std::make_pair(std::string("capturing"), guint64{0}));
  EXPECT_EQ(states[1], std::make_pair(std::string("exited"), guint64{40 * 480}));
  EXPECT_EQ(states[2], std::make_pair(std::string("waiting"), guint64{40 * 480}));
  EXPECT_EQ(states[3].first, "capturing");
  EXPECT_GT(states[3].second, guint64{40 * 480});
  size_t first_of_second = 0;
  while (first_of_second < bufs.size() && bufs[first_of_second].offset < states[3].second) {
    ++first_of_second;
  }
  ASSERT_LT(first_of_second, bufs.size());
  EXPECT_TRUE(bufs[first_of_second - 1].gap);
}

TEST(Target, AReattachmentIsOneDiscontAndPtsNeverStepsBack) {
  // Process 1 plays, exits; the element fills the wait with GAP; process 2's first packet is
  // stamped 30 ms before where the fill ended (the fill runs ahead of late audio): the stream
  // goes on from where it is, with one DISCONT, and counts the re-attachment.
  auto s = scenario();
  s->state(Phase::kCapturing, 1001, 1)
      .packets(50, {480})
      .state(Phase::kExited, 1001, 0)
      .state(Phase::kWaiting, 0, 0)
      .idle(300 * kMs, 10 * kMs)
      .rewind(30 * kMs)
      .state(Phase::kCapturing, 1002, 1)
      .packets(50, {480})
      .exit();
  Capture c(s, "", "process-name=player on-target-exit=wait buffer-time=60000000");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  const std::vector<Buf> bufs = c.pull();
  ASSERT_FALSE(bufs.empty());
  size_t disconts = 0, gaps = 0, second = 0;
  for (size_t i = 0; i < bufs.size(); ++i) {
    if (i > 0) {
      EXPECT_GE(bufs[i].pts, bufs[i - 1].pts + bufs[i - 1].duration) << "buffer " << i;
      EXPECT_EQ(bufs[i].offset, bufs[i - 1].offset_end) << "buffer " << i;
      if (!bufs[i].discont) {
        EXPECT_EQ(bufs[i].pts, bufs[i - 1].pts + bufs[i - 1].duration) << "buffer " << i;
      }
    }
    if (bufs[i].discont) {
      ++disconts;
      second = i;
    }
    gaps += bufs[i].gap ? 1 : 0;
  }
  EXPECT_EQ(disconts, 2u);  // the start, the re-attachment
  EXPECT_GT(gaps, 0u);      // the wait was filled
  ASSERT_GT(second, 0u);
  EXPECT_FALSE(bufs[second].gap);  // the DISCONT is on the new process's first audio
  EXPECT_TRUE(bufs[second - 1].gap);
  EXPECT_EQ(c.stat("reattachments"), 1u);
  EXPECT_EQ(c.stat("discontinuities"), 2u);
  EXPECT_EQ(c.stat("resyncs"), 0u);
}

TEST(Target, ReferenceTimestampsAreTheWallClockOfTheFirstFrame) {
  auto s = scenario();
  s->paced(true).packets(20, {480}).exit();
  Capture c(s, "", "reference-timestamp=true");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  GstCaps *unix_caps = gst_caps_new_empty_simple("timestamp/x-unix");
  std::vector<GstClockTime> stamps;
  std::vector<GstClockTime> pts;
  for (;;) {
    GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(c.sink()), 10 * GST_SECOND);
    if (sample == nullptr) {
      break;
    }
    const GstClockTime now = static_cast<GstClockTime>(g_get_real_time()) * 1000;
    GstBuffer *b = gst_sample_get_buffer(sample);
    GstReferenceTimestampMeta *meta = gst_buffer_get_reference_timestamp_meta(b, unix_caps);
    EXPECT_NE(meta, nullptr) << "buffer " << stamps.size();
    if (meta != nullptr) {
      // Captured before it reached us, and not long before: the scenario paces its packets.
      EXPECT_LE(meta->timestamp, now);
      EXPECT_LT(now - meta->timestamp, static_cast<GstClockTime>(GST_SECOND));
      stamps.push_back(meta->timestamp);
      pts.push_back(GST_BUFFER_PTS(b));
    }
    gst_sample_unref(sample);
  }
  gst_caps_unref(unix_caps);
  ASSERT_EQ(stamps.size(), 20u);
  // They advance as the PTS do (the same device times), to within the wall clock's
  // microsecond and how well the two clocks' offset can be read (a tight bracket: 50 us).
  for (size_t i = 1; i < stamps.size(); ++i) {
    const GstClockTimeDiff wall = GST_CLOCK_DIFF(stamps[i - 1], stamps[i]);
    const GstClockTimeDiff running = GST_CLOCK_DIFF(pts[i - 1], pts[i]);
    EXPECT_NEAR(static_cast<double>(wall), static_cast<double>(running), 1e5) << i;
  }
}

TEST(Target, WithoutTheOptionNoReferenceTimestamp) {
  auto s = scenario();
  s->packets(3, {480}).exit();
  Capture c(s);
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(c.sink()), 10 * GST_SECOND);
  ASSERT_NE(sample, nullptr);
  EXPECT_EQ(gst_buffer_get_reference_timestamp_meta(gst_sample_get_buffer(sample), nullptr),
            nullptr);
  gst_sample_unref(sample);
}
