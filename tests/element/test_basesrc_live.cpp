// SPDX-License-Identifier: LGPL-2.1-or-later
// What GstBaseSrc (the GStreamer this is built against, 1.22 on Debian 12) does and does not
// do for a live source whose create() blocks, across PLAYING -> PAUSED -> PLAYING. The
// element's own pause handling (gstprocaudiosrc.cpp) keeps exactly what these show GstBaseSrc
// leaves to it:
//  - PLAYING -> PAUSED neither calls unlock() nor wakes a blocked create(): the element must
//    wake its own reader (it ends the stream; libs/gst/base/gstbasesrc.c,
//    gst_base_src_set_playing() only sets live_running and unschedules a clock wait);
//  - gst_base_src_wait_playing() from create() blocks until PLAYING again (GST_FLOW_OK) or
//    until the element leaves PAUSED for READY (GST_FLOW_FLUSHING): the element waits there,
//    on GstBaseSrc's own condition, not on one of its own;
//  - a create() that returns FLUSHING while PAUSED leaves the streaming task paused after
//    PLAYING (GstBaseSrc waits for PLAYING after create() and then pauses the task on the
//    FLUSHING it kept): the element must not end create() on a pause, it waits inside it.
// A minimal GstPushSrc stands in for the element here, so that only GstBaseSrc is observed.
#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace {

constexpr auto kTimeout = std::chrono::seconds(10);

// What the probe's create() does and what happened to it, shared with the test thread.
struct Probe {
  enum class Then { kBlock, kWaitPlaying, kFlushing };

  std::mutex mutex;
  std::condition_variable cond;
  Then then = Then::kBlock;  // what a create() blocked in kBlock does once released
  bool release = false;      // lets a blocked create() go on
  bool unlocked = false;     // unlock() was called (and not unlock_stop() since)
  int creates = 0;           // create() calls entered
  int inside = 0;            // create() calls not returned yet
  int unlock_calls = 0;
  bool waiting_playing = false;  // create() is about to call gst_base_src_wait_playing()
  int wait_playing_returns = 0;
  GstFlowReturn wait_playing_result = GST_FLOW_OK;
  bool playing_requested = false;  // the test asked for PLAYING again
  bool returned_before_playing = false;

  // Waits (bounded) for `done`; the probe's mutex is held while `done` runs.
  template <typename Done>
  bool wait_for(Done done) {
    std::unique_lock<std::mutex> lock(mutex);
    return cond.wait_for(lock, kTimeout, done);
  }
};

}  // namespace

#define PROBE_TYPE (probe_src_get_type())
G_DECLARE_FINAL_TYPE(ProbeSrc, probe_src, PROBE, SRC, GstPushSrc)
struct _ProbeSrc {
  GstPushSrc parent;
  Probe *probe;
};
G_DEFINE_TYPE(ProbeSrc, probe_src, GST_TYPE_PUSH_SRC)

static GstFlowReturn probe_src_create(GstPushSrc *src, GstBuffer **out) {
  Probe &p = *PROBE_SRC(src)->probe;
  Probe::Then then;
  {
    std::unique_lock<std::mutex> lock(p.mutex);
    ++p.creates;
    ++p.inside;
    p.cond.notify_all();
    p.cond.wait(lock, [&p] { return p.release || p.unlocked; });
    p.release = false;
    then = p.unlocked ? Probe::Then::kFlushing : p.then;
  }
  GstFlowReturn ret = GST_FLOW_FLUSHING;
  if (then == Probe::Then::kWaitPlaying) {
    {
      std::lock_guard<std::mutex> lock(p.mutex);
      p.waiting_playing = true;
      p.cond.notify_all();
    }
    ret = gst_base_src_wait_playing(GST_BASE_SRC(src));
    std::lock_guard<std::mutex> lock(p.mutex);
    ++p.wait_playing_returns;
    p.wait_playing_result = ret;
    p.returned_before_playing = ret == GST_FLOW_OK && !p.playing_requested;
  }
  if (ret == GST_FLOW_OK) {
    *out = gst_buffer_new_allocate(nullptr, 4, nullptr);
  }
  std::lock_guard<std::mutex> lock(p.mutex);
  --p.inside;
  p.cond.notify_all();
  return ret;
}

static gboolean probe_src_unlock(GstBaseSrc *src) {
  Probe &p = *PROBE_SRC(src)->probe;
  std::lock_guard<std::mutex> lock(p.mutex);
  ++p.unlock_calls;
  p.unlocked = true;
  p.cond.notify_all();
  return TRUE;
}

static gboolean probe_src_unlock_stop(GstBaseSrc *src) {
  Probe &p = *PROBE_SRC(src)->probe;
  std::lock_guard<std::mutex> lock(p.mutex);
  p.unlocked = false;
  return TRUE;
}

static void probe_src_init(ProbeSrc *self) {
  gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
  gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}

static void probe_src_class_init(ProbeSrcClass *klass) {
  static GstStaticPadTemplate src_template =
      GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
  gst_element_class_add_static_pad_template(GST_ELEMENT_CLASS(klass), &src_template);
  gst_element_class_set_static_metadata(GST_ELEMENT_CLASS(klass), "Probe source", "Source",
                                        "Blocks in create() as the test says (tests only)",
                                        "procaudio developers");
  GST_BASE_SRC_CLASS(klass)->unlock = probe_src_unlock;
  GST_BASE_SRC_CLASS(klass)->unlock_stop = probe_src_unlock_stop;
  GST_PUSH_SRC_CLASS(klass)->create = probe_src_create;
}

namespace {

// probesrc ! fakesink, with the probe the test drives.
class LiveSrc : public ::testing::Test {
 protected:
  void SetUp() override {
    pipeline_ = gst_pipeline_new(nullptr);
    src_ = GST_ELEMENT(g_object_new(PROBE_TYPE, nullptr));
    PROBE_SRC(src_)->probe = &probe_;
    GstElement *sink = gst_element_factory_make("fakesink", nullptr);
    ASSERT_NE(sink, nullptr);
    g_object_set(sink, "sync", FALSE, nullptr);
    gst_bin_add_many(GST_BIN(pipeline_), src_, sink, nullptr);
    ASSERT_TRUE(gst_element_link(src_, sink));
  }
  void TearDown() override {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(pipeline_);
  }
  GstStateChangeReturn set_state(GstState state) { return gst_element_set_state(pipeline_, state); }
  // PLAYING, and the first create() entered and blocked.
  void play_until_create_blocks() {
    ASSERT_NE(set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
    ASSERT_TRUE(probe_.wait_for([this] { return probe_.inside == 1; }));
  }
  void release(Probe::Then then) {
    std::lock_guard<std::mutex> lock(probe_.mutex);
    probe_.then = then;
    probe_.release = true;
    probe_.cond.notify_all();
  }

  Probe probe_;
  GstElement *pipeline_ = nullptr;
  GstElement *src_ = nullptr;
};

TEST_F(LiveSrc, PausingNeitherCallsUnlockNorWakesABlockedCreate) {
  ASSERT_NO_FATAL_FAILURE(play_until_create_blocks());
  // A live source's PAUSED completes at once (NO_PREROLL): the change is done when this returns.
  EXPECT_EQ(set_state(GST_STATE_PAUSED), GST_STATE_CHANGE_NO_PREROLL);
  {
    std::lock_guard<std::mutex> lock(probe_.mutex);
    EXPECT_EQ(probe_.unlock_calls, 0);
    EXPECT_EQ(probe_.inside, 1) << "create() was woken by the pause";
  }
  // Leaving PAUSED for READY is what unlocks it.
  EXPECT_EQ(set_state(GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  std::lock_guard<std::mutex> lock(probe_.mutex);
  EXPECT_GE(probe_.unlock_calls, 1);
  EXPECT_EQ(probe_.inside, 0);
}

TEST_F(LiveSrc, WaitPlayingFromCreateBlocksUntilPlayingAgain) {
  ASSERT_NO_FATAL_FAILURE(play_until_create_blocks());
  ASSERT_EQ(set_state(GST_STATE_PAUSED), GST_STATE_CHANGE_NO_PREROLL);
  release(Probe::Then::kWaitPlaying);
  ASSERT_TRUE(probe_.wait_for([this] { return probe_.waiting_playing; }));
  {
    std::lock_guard<std::mutex> lock(probe_.mutex);
    probe_.playing_requested = true;
  }
  ASSERT_NE(set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_TRUE(probe_.wait_for([this] { return probe_.wait_playing_returns == 1; }));
  std::lock_guard<std::mutex> lock(probe_.mutex);
  EXPECT_EQ(probe_.wait_playing_result, GST_FLOW_OK);
  EXPECT_FALSE(probe_.returned_before_playing) << "wait_playing() returned while PAUSED";
}

TEST_F(LiveSrc, WaitPlayingReturnsFlushingWhenPausedGoesToReady) {
  ASSERT_NO_FATAL_FAILURE(play_until_create_blocks());
  ASSERT_EQ(set_state(GST_STATE_PAUSED), GST_STATE_CHANGE_NO_PREROLL);
  release(Probe::Then::kWaitPlaying);
  ASSERT_TRUE(probe_.wait_for([this] { return probe_.waiting_playing; }));
  EXPECT_EQ(set_state(GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  std::lock_guard<std::mutex> lock(probe_.mutex);
  EXPECT_EQ(probe_.wait_playing_returns, 1);
  EXPECT_EQ(probe_.wait_playing_result, GST_FLOW_FLUSHING);
}

TEST_F(LiveSrc, ACreateThatReturnsFlushingWhilePausedLeavesTheTaskPausedAfterPlaying) {
  ASSERT_NO_FATAL_FAILURE(play_until_create_blocks());
  ASSERT_EQ(set_state(GST_STATE_PAUSED), GST_STATE_CHANGE_NO_PREROLL);
  release(Probe::Then::kFlushing);
  ASSERT_TRUE(probe_.wait_for([this] { return probe_.inside == 0; }));
  ASSERT_NE(set_state(GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  // The streaming thread held the pad's stream lock through that create() and what followed
  // it: once the test holds the lock, that loop iteration is over and the task's next state
  // is set.
  GstPad *pad = gst_element_get_static_pad(src_, "src");
  GST_PAD_STREAM_LOCK(pad);
  const GstTaskState task = gst_pad_get_task_state(pad);
  GST_PAD_STREAM_UNLOCK(pad);
  gst_object_unref(pad);
  EXPECT_EQ(task, GST_TASK_PAUSED);
  std::lock_guard<std::mutex> lock(probe_.mutex);
  EXPECT_EQ(probe_.creates, 1);
}

}  // namespace
