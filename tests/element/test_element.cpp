// SPDX-License-Identifier: LGPL-2.1-or-later
// GstProcAudioSrc through the scripted backend, observed as a user would: buffers and their
// timestamps, offsets and flags at an appsink, messages on the bus, the stats property; the
// timestamp contract, overflow, the end, errors, state changes. (Properties and caps:
// test_element_properties.cpp; targets: test_element_targets.cpp.)
#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/audio/audio.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "capture_fixture.h"
#include "common/leaks_tracer.h"
#include "core/capture_engine.h"
#include "core/monotonic_clock.h"
#include "core/packet.h"
#include "gstscriptedprocsrc.h"

using procaudio::CaptureError;
using procaudio::ErrorKind;
using procaudio::kPacketDiscontinuity;
using procaudio::kPacketSilent;
using procaudio::testing::Scenario;

using namespace element_testing;  // the fixture is these tests' vocabulary

// ---- Timestamp contract ----

namespace {

// Every buffer continues the previous one exactly, or says DISCONT; returns the DISCONT count.
int check_continuity(const std::vector<Buf> &bufs) {
  int disconts = 0;
  for (size_t i = 0; i < bufs.size(); ++i) {
    if (bufs[i].discont) {
      ++disconts;
      continue;
    }
    EXPECT_GT(i, 0u) << "the first buffer must be DISCONT";
    if (i == 0) {
      continue;
    }
    EXPECT_EQ(bufs[i].pts, bufs[i - 1].pts + bufs[i - 1].duration) << "buffer " << i;
    EXPECT_EQ(bufs[i].offset, bufs[i - 1].offset_end) << "buffer " << i;
  }
  return disconts;
}

GstClockTime base_time(Capture &c) {
  return gst_element_get_base_time(c.src());
}

}  // namespace

// Clause 1: PTS = running time at which the first frame was captured, from device times.
TEST(Timestamps, PtsIsTheRunningTimeOfTheDeviceCaptureTimeNotOfArrival) {
  auto s = scenario();
  // Delivered all at once: arrival times bunch up, device times span 2 s.
  s->packets(200, {480}).exit();
  // Delivered at once: a ring that holds it all, so nothing overflows.
  Capture c(s, "", "buffer-time=60000000");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  const auto bufs = c.pull();
  ASSERT_EQ(bufs.size(), 200u);
  const GstClockTime base = base_time(c);
  for (const Buf &b : bufs) {
    ASSERT_FALSE(b.first_channel.empty());
    const auto frame = static_cast<uint64_t>(b.first_channel[0]);
    const GstClockTime expected = s->true_time_of_frame(frame) - base;
    EXPECT_LE(std::llabs(GST_CLOCK_DIFF(expected, b.pts)), 1000) << "frame " << frame;
  }
}

TEST(Timestamps, AnotherPipelineClockIsCalibratedAgainstTheDeviceTimeline) {
  auto s = scenario();
  s->packets(100, {480}).exit();
  Capture c(s, "", "buffer-time=60000000");
  GstClock *realtime = GST_CLOCK(
      g_object_new(GST_TYPE_SYSTEM_CLOCK, "clock-type", GST_CLOCK_TYPE_REALTIME, nullptr));
  gst_pipeline_use_clock(GST_PIPELINE(c.pipeline()), realtime);
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  const auto bufs = c.pull();
  ASSERT_EQ(bufs.size(), 100u);
  // Running time of a device time = its realtime-clock reading - base time.
  const GstClockTime mono_now = g_get_monotonic_time() * GST_USECOND;
  const GstClockTimeDiff to_realtime = GST_CLOCK_DIFF(mono_now, gst_clock_get_time(realtime));
  for (const Buf &b : bufs) {
    const auto frame = static_cast<uint64_t>(b.first_channel[0]);
    const GstClockTimeDiff expected = static_cast<GstClockTimeDiff>(s->true_time_of_frame(frame)) +
                                      to_realtime - static_cast<GstClockTimeDiff>(base_time(c));
    EXPECT_LE(std::llabs(GST_CLOCK_DIFF(expected, b.pts)), 2 * static_cast<gint64>(kMs));
  }
  check_continuity(bufs);
  gst_object_unref(realtime);
}

// Clause 2: within a continuous stretch PTS(n+1) = PTS(n) + DURATION(n) exactly.
TEST(Timestamps, ContinuousExactlyWithOddPacketSizesAndJitter) {
  auto s = scenario();
  s->jitter(8 * kMs).packets(600, {441, 1024, 2048, 7, 333}).exit();
  Capture c(s, "", "latency-time=10000 buffer-time=60000000");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  const auto bufs = c.pull();
  ASSERT_GT(bufs.size(), 900u);  // 462k frames in 10 ms chunks
  EXPECT_EQ(check_continuity(bufs), 1) << "only the first buffer is DISCONT";
  uint64_t frames = 0;
  for (const Buf &b : bufs) {
    EXPECT_EQ(b.duration, gst_util_uint64_scale_int(b.offset_end, GST_SECOND, 48000) -
                              gst_util_uint64_scale_int(b.offset, GST_SECOND, 48000));
    EXPECT_EQ(static_cast<uint64_t>(b.first_channel[0]), frames) << "every frame, in order";
    frames += b.offset_end - b.offset;
  }
  EXPECT_EQ(frames, s->frames_delivered());
}

// Clause 3: DISCONT after every loss of continuity and nowhere else.
TEST(Timestamps, DiscontMarksStartDeviceDiscontinuityAndResyncOnly) {
  auto s = scenario();
  s->packets(50, {480})
      .packets(50, {480}, kPacketDiscontinuity)  // the OS reports lost data
      .drift_ppm(-5000)                          // the device clock runs fast: a resync
      .packets(1000, {480})
      .exit();
  Capture c(s, "", "buffer-time=60000000");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  const auto bufs = c.pull();
  const int disconts = check_continuity(bufs);
  EXPECT_EQ(disconts, 3);
  EXPECT_EQ(static_cast<int>(c.stat("discontinuities")), disconts);
  EXPECT_EQ(c.stat("resyncs"), 2u);
  // The device-discontinuity buffer starts exactly at the flagged packet.
  EXPECT_TRUE(bufs[50].discont);
  EXPECT_EQ(bufs[50].first_channel[0], 50.0f * 480);
}

// Clause 4: element-made silence is GAP; silence the OS delivers as data is not.
TEST(Timestamps, GapOnElementMadeSilenceOnly) {
  auto s = scenario();
  s->packets(10, {480})
      .gap(100 * kMs)                     // nothing for 100 ms: filled
      .packets(10, {480}, kPacketSilent)  // the OS says silent: data, not GAP
      .idle(200 * kMs, 10 * kMs)          // idle target, no packets at all: filled
      .packets(10, {480})
      .exit();
  Capture c(s, "", "buffer-time=60000000");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  const auto bufs = c.pull();
  uint64_t gap_frames = 0, silent_data_frames = 0, data_frames = 0;
  for (const Buf &b : bufs) {
    const bool zeros = std::all_of(b.first_channel.begin(), b.first_channel.end(),
                                   [](float v) { return v == 0.0f; });
    if (b.gap) {
      EXPECT_TRUE(zeros);
      gap_frames += b.offset_end - b.offset;
    } else if (zeros && b.offset > 0) {
      silent_data_frames += b.offset_end - b.offset;
    } else {
      data_frames += b.offset_end - b.offset;
    }
  }
  EXPECT_EQ(silent_data_frames, 4800u);
  EXPECT_EQ(gap_frames, c.stat("frames-gap-filled"));
  EXPECT_GE(gap_frames, 4800u + 8000u);  // the 100 ms gap and most of the idle 200 ms
  EXPECT_EQ(data_frames, 2u * 4800u);
  EXPECT_EQ(check_continuity(bufs), 1);
}

// Clause 5: |PTS - device capture time| stays within 40 ms, corrected by resyncs.
TEST(Timestamps, DriftIsKeptWithinTheAlignmentThreshold) {
  auto s = scenario();
  s->drift_ppm(2000).jitter(5 * kMs).packets(3000, {441, 1024}).exit();
  Capture c(s, "", "buffer-time=60000000");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  const auto bufs = c.pull();
  const GstClockTime base = base_time(c);
  gint64 worst = 0;
  for (const Buf &b : bufs) {
    if (b.gap || b.first_channel.empty()) {
      continue;
    }
    const auto frame = static_cast<uint64_t>(b.first_channel[0]);
    const gint64 error = std::llabs(GST_CLOCK_DIFF(s->true_time_of_frame(frame) - base, b.pts));
    worst = std::max(worst, error);
  }
  EXPECT_LE(worst, static_cast<gint64>(40 * kMs + 5 * kMs)) << "threshold plus jitter";
  EXPECT_GE(c.stat("resyncs"), 2u) << "a 2000 ppm drift over 46 s drifts 91 ms: resyncs";
  EXPECT_EQ(c.stat("frames-dropped"), 0u);
}

GstClockTime min_latency_of(Capture &c) {
  GstQuery *q = gst_query_new_latency();
  EXPECT_TRUE(gst_element_query(c.src(), q));
  GstClockTime min = 0;
  gst_query_parse_latency(q, nullptr, &min, nullptr);
  gst_query_unref(q);
  return min;
}

// Clause 6: LATENCY: live, min = latency-time + the longer of the packet period and the idle
// margin plus a tick's slack, max = buffer-time.
TEST(Timestamps, LatencyQueryFollowsTheContract) {
  auto s = scenario();
  s->latency_ns = 7 * kMs;
  s->idle_margin_ns = 10 * kMs;
  s->packets(5, {480}).hold();
  Capture c(s, "", "latency-time=20000 buffer-time=300000");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  c.pull(1);
  GstQuery *q = gst_query_new_latency();
  ASSERT_TRUE(gst_element_query(c.src(), q));
  gboolean live = FALSE;
  GstClockTime min = 0, max = 0;
  gst_query_parse_latency(q, &live, &min, &max);
  EXPECT_TRUE(live);
  EXPECT_EQ(min, 20 * kMs + 10 * kMs + procaudio::CaptureEngine::kTickSlackNs);
  EXPECT_EQ(max, 300 * kMs);
  gst_query_unref(q);
  s->release();
}

TEST(Timestamps, APacketPeriodLongerThanTheMarginSetsTheMinLatency) {
  auto s = scenario();
  s->latency_ns = 21333333;  // a PipeWire quantum of 1024 frames
  s->idle_margin_ns = 5 * kMs;
  s->packets(5, {480}).hold();
  Capture c(s, "", "latency-time=10000");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  c.pull(1);
  EXPECT_EQ(min_latency_of(c), 10 * kMs + 21333333);
  s->release();
}

// Packets that come later than the idle margin allows raise it; the element says so on the
// bus (LATENCY) and answers the next query with a min latency that covers them.
TEST(Timestamps, LatePacketsRaiseTheMinLatencyAndAnnounceIt) {
  auto s = scenario();
  s->latency_ns = 7 * kMs;
  s->idle_margin_ns = 5 * kMs;
  // Paced: a 30 ms packet is handed over when its last frame was captured, 30 ms after its
  // first.
  s->paced(true).packets(10, {480}).hold().packets(20, {1440}).hold();
  Capture c(s, "", "latency-time=10000");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_TRUE(s->wait_held(kTimeoutMs));
  c.pull(2);
  const GstClockTime before = min_latency_of(c);
  EXPECT_GE(before, 10 * kMs + 10 * kMs) << "10 ms packets: 10 ms late at least";
  EXPECT_LE(before,
            10 * kMs + 10 * kMs + 5 * kMs + procaudio::CaptureEngine::kTickSlackNs + 20 * kMs)
      << "scheduling slack";
  while (GstMessage *m = c.wait_message(GST_MESSAGE_LATENCY, 0)) {
    gst_message_unref(m);  // any from the first packets
  }
  s->release();
  ASSERT_TRUE(s->wait_held(kTimeoutMs));
  GstMessage *latency = c.wait_message(GST_MESSAGE_LATENCY);
  ASSERT_NE(latency, nullptr) << "no LATENCY message once 30 ms packets came";
  EXPECT_EQ(GST_MESSAGE_SRC(latency), GST_OBJECT(c.src()));
  gst_message_unref(latency);
  const GstClockTime after = min_latency_of(c);
  EXPECT_GE(after, 10 * kMs + 30 * kMs + 5 * kMs + procaudio::CaptureEngine::kTickSlackNs);
  EXPECT_GT(after, before);
  s->release();
}

// ---- Overflow, end, errors ----

TEST(Overflow, StalledConsumerDropsOldestWithDiscontQosAndExactCounts) {
  auto s = scenario();
  s->packets(500, {441, 1024}).hold().packets(20, {480}).exit();
  // A consumer that stalls: appsink holds one buffer and nobody pulls.
  Capture c(s, "", "buffer-time=100000", "max-buffers=1 drop=false");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_TRUE(s->wait_held(kTimeoutMs));
  s->release();
  const auto bufs = c.pull();
  ASSERT_TRUE(s->wait_done(kTimeoutMs));
  const guint64 dropped = c.stat("frames-dropped");
  EXPECT_GT(dropped, 0u);
  // The buffer right after the loss is DISCONT and its offset jumps by what was lost.
  // (The producer may lap the reader before its first read: then the stream's first buffer
  // already starts past offset 0.)
  int overflow_disconts = 0;
  uint64_t jumped = 0;
  for (size_t i = 0; i < bufs.size(); ++i) {
    const uint64_t expected = i == 0 ? 0 : bufs[i - 1].offset_end;
    if (bufs[i].offset != expected) {
      EXPECT_TRUE(bufs[i].discont) << "buffer " << i;
      jumped += bufs[i].offset - expected;
      ++overflow_disconts;
    }
  }
  EXPECT_GE(overflow_disconts, 1);
  EXPECT_EQ(jumped, dropped);
  check_continuity(bufs);
  // Frames in = frames pushed + frames dropped, to the frame.
  uint64_t pulled = 0;
  for (const Buf &b : bufs) {
    pulled += b.offset_end - b.offset;
  }
  EXPECT_EQ(pulled, c.stat("frames-pushed"));
  EXPECT_EQ(c.stat("frames-captured") + c.stat("frames-gap-filled"), pulled + dropped);
  // And the application heard about it.
  GstMessage *qos = c.wait_message(GST_MESSAGE_QOS, 1000);
  ASSERT_NE(qos, nullptr);
  GstFormat format;
  guint64 processed = 0, qos_dropped = 0;
  gst_message_parse_qos_stats(qos, &format, &processed, &qos_dropped);
  EXPECT_EQ(format, GST_FORMAT_DEFAULT);
  EXPECT_GT(qos_dropped, 0u);
  EXPECT_LE(qos_dropped, dropped);
  gst_message_unref(qos);
}

TEST(End, TargetExitSendsEosAndAMuxerFinalisesItsFile) {
  auto s = scenario();
  s->packets(100, {441}).exit();
  const TempWav wav_file;
  ASSERT_TRUE(wav_file.ok());
  GError *error = nullptr;
  GstElement *pipeline = gst_parse_launch(
      (std::string("scriptedprocsrc name=src process-name=scripted-target buffer-time=60000000 ! "
                   "wavenc ! filesink "
                   "location=") +
       wav_file.path())
          .c_str(),
      &error);
  ASSERT_EQ(error, nullptr);
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  gst_scripted_proc_src_set_scenario(src, s);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered(
      bus, kTimeoutMs * kMs, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  ASSERT_NE(msg, nullptr);
  EXPECT_EQ(GST_MESSAGE_TYPE(msg), GST_MESSAGE_EOS);
  gst_message_unref(msg);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(src);
  gst_object_unref(pipeline);

  std::ifstream f(wav_file.path(), std::ios::binary);
  std::vector<char> wav((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GE(wav.size(), 44u);
  uint32_t riff_size = 0, data_size = 0;
  std::memcpy(&riff_size, &wav[4], 4);
  std::memcpy(&data_size, &wav[40], 4);
  EXPECT_EQ(std::string(&wav[0], 4), "RIFF");
  EXPECT_EQ(riff_size, wav.size() - 8) << "header finalised";
  EXPECT_EQ(data_size, 100u * 441u * 8u) << "every captured frame is in the file";
}

TEST(Errors, ACaptureThreadErrorReachesTheBusAfterWhatWasCaptured) {
  auto s = scenario();
  s->packets(10, {480}).fail({ErrorKind::kDeviceLost, "The audio device was removed.",
                              "IAudioCaptureClient::GetBuffer: 0x88890004 "
                              "(AUDCLNT_E_DEVICE_INVALIDATED)"});
  Capture c(s);
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  const ErrorInfo e = wait_error(c);
  ASSERT_TRUE(e.found);
  EXPECT_EQ(e.domain, GST_RESOURCE_ERROR);
  EXPECT_EQ(e.code, GST_RESOURCE_ERROR_READ);
  EXPECT_EQ(e.message, "The audio device was removed.");
  EXPECT_TRUE(contains(e.debug, "0x88890004")) << e.debug;
  EXPECT_EQ(c.stat("frames-pushed"), 4800u) << "captured audio is not thrown away";
}

// ---- State changes and flushing ----

TEST(States, FlushWhileCreateWaitsReturnsAndStreamingResumes) {
  auto s = scenario();
  s->hold().packets(10, {480}).exit();
  Capture c(s);
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_TRUE(s->wait_held(kTimeoutMs));  // create() is now waiting for data
  auto flush = std::async(std::launch::async, [&] {
    gst_element_send_event(c.src(), gst_event_new_flush_start());
    gst_element_send_event(c.src(), gst_event_new_flush_stop(TRUE));
  });
  ASSERT_EQ(flush.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "hang";
  s->release();
  const auto bufs = c.pull();
  EXPECT_EQ(bufs.size(), 10u);
}

TEST(States, StoppingWhileCreateWaitsDoesNotHang) {
  auto s = scenario();
  s->hold();
  Capture c(s);
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_TRUE(s->wait_held(kTimeoutMs));
  auto stop = std::async(std::launch::async, [&] { return c.set_state(GST_STATE_NULL); });
  ASSERT_EQ(stop.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "hang";
  EXPECT_EQ(stop.get(), GST_STATE_CHANGE_SUCCESS);
}

TEST(States, EachPlayStartsAFreshTimelineWithDiscont) {
  auto s = scenario();
  s->paced(true).packets(20, {480}).hold();  // real device times: running time is comparable
  Capture c(s);
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  auto first = c.pull(20);
  ASSERT_EQ(first.size(), 20u);
  EXPECT_TRUE(first[0].discont);
  ASSERT_NE(c.set_state(GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  auto second = c.pull(1);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_TRUE(second[0].discont);
  EXPECT_EQ(second[0].offset, 0u);
  EXPECT_GT(second[0].pts, first.back().pts);
  EXPECT_EQ(s->starts(), 2);
}

using procaudio::testing::created_and_alive;
using procaudio::testing::leaks_tracer;

TEST(States, AThousandStateCyclesNeitherLeakHangNorCrash) {
  GstTracer *leaks = leaks_tracer();
  ASSERT_NE(leaks, nullptr) << "run with GST_TRACERS=leaks (meson test does)";
  auto s = scenario();
  s->paced(true).packets(1000000, {480});
  auto c = std::make_unique<Capture>(s, "", "", "enable-last-sample=false");
  GstBus *bus = gst_element_get_bus(c->pipeline());
  auto cycle = [&](int i) {
    ASSERT_NE(c->set_state(GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE) << i;
    ASSERT_NE(c->set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE) << i;
    if (i % 10 == 0) {
      ASSERT_EQ(c->pull(1).size(), 1u) << "buffers still flow, cycle " << i;
    }
    ASSERT_NE(c->set_state(GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE) << i;
    ASSERT_EQ(c->set_state(GST_STATE_READY), GST_STATE_CHANGE_SUCCESS) << i;
    gst_bus_set_flushing(bus, TRUE);  // nobody reads the state-change messages here
    gst_bus_set_flushing(bus, FALSE);
  };
  cycle(0);  // first-use allocations (caps caches, task pools) are not leaks
  g_signal_emit_by_name(leaks, "activity-start-tracking");
  for (int i = 1; i <= 1000; ++i) {
    cycle(i);
    if (HasFatalFailure()) {
      break;
    }
  }
  ASSERT_EQ(c->set_state(GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  // Gone with the pipeline: what its elements held until disposed (appsink's last preroll
  // buffer, and the pool that buffer came from, with its free buffers).
  gst_object_unref(bus);
  c.reset();
  // A leak per cycle would leave hundreds of some type: nothing is left but one-off caches.
  std::string grew;
  for (const auto &[type, n] : created_and_alive(leaks)) {
    if (n > 1) {
      grew += type + " x" + std::to_string(n) + " ";
    }
  }
  g_signal_emit_by_name(leaks, "activity-stop-tracking");
  EXPECT_TRUE(grew.empty()) << "created during 1000 cycles and still alive: " << grew;
  EXPECT_EQ(s->opens(), 1001);
  gst_object_unref(leaks);
}

TEST(Stats, CountWhatHappened) {
  auto s = scenario();
  s->packets(10, {480}).packets(5, {480}, kPacketSilent).gap(50 * kMs).packets(5, {480}).exit();
  Capture c(s, "", "buffer-time=60000000");
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  const auto bufs = c.pull();
  EXPECT_EQ(c.stat("packets"), 20u);
  EXPECT_EQ(c.stat("frames-captured"), 9600u);
  EXPECT_EQ(c.stat("frames-silent"), 2400u);
  EXPECT_EQ(c.stat("frames-gap-filled"), 2400u);
  EXPECT_EQ(c.stat("frames-dropped"), 0u);
  EXPECT_EQ(c.stat("chunks-pushed"), bufs.size());
  EXPECT_EQ(c.stat("discontinuities"), 1u);
  EXPECT_GT(c.stat("latency-max"), 0u);
  EXPECT_GE(c.stat("latency-max"), c.stat("latency-last"));
  // The last chunk arrived before it was pushed, which was before now, on the same clock.
  EXPECT_GT(c.stat("arrival-last"), 0u);
  EXPECT_LE(c.stat("arrival-last") + c.stat("latency-last"), procaudio::monotonic_now_ns());
}

// Chunks go out in buffers from one pool (GstBaseSrc's, configured for a whole chunk), not in
// a fresh allocation each; a short or gap chunk is a pool buffer too.
TEST(Allocation, EveryBufferComesFromOnePool) {
  auto s = scenario();
  s->packets(20, {480}).packets(1, {100}).gap(50 * kMs).packets(20, {480}).exit();
  Capture c(s, "", "buffer-time=60000000");  // the script plays faster than real time
  ASSERT_NE(c.set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  const auto bufs = c.pull();
  ASSERT_GE(bufs.size(), 40u);
  size_t gaps = 0;
  for (const Buf &b : bufs) {
    EXPECT_NE(b.pool, nullptr);
    EXPECT_EQ(b.pool, bufs.front().pool);
    gaps += b.gap ? 1 : 0;
  }
  EXPECT_GT(gaps, 0u);
}

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  gst_scripted_proc_src_register();
  ::testing::InitGoogleTest(&argc, argv);
  const int result = RUN_ALL_TESTS();
  gst_deinit();
  return result;
}
