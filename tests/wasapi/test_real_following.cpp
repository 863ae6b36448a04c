// SPDX-License-Identifier: LGPL-2.1-or-later
// wasapi-real, following: process-name=X on-target-exit=wait started before X runs, X playing
// one tone, X exiting, X starting again with another tone. The element waits (GAP silence and
// a "waiting" message), captures each process of the name from its audio session, keeps PTS
// continuous across it all (DISCONT exactly at each re-attachment), and hears nobody else.
// Under wine the session notifications are not implemented: the scenario asserts the clean
// error that says so instead.
#include <algorithm>
#include <string>
#include <vector>

#include "real_windows.h"

namespace procaudio {
namespace wasapi {
namespace testing {
namespace {

constexpr double kFirstHz = 1500;
constexpr double kSecondHz = 2500;
constexpr uint32_t kHearMs = 1500;  // of each process, before the next step

// The index of the first message with `state` (and `pid`, unless 0) from message `from` on.
size_t find_message(const CaptureRun &run, const std::string &state, uint32_t pid,
                    size_t from = 0) {
  for (size_t i = from; i < run.targets.size(); ++i) {
    if (run.targets[i].state == state && (pid == 0 || run.targets[i].pid == pid)) {
      return i;
    }
  }
  return run.targets.size();
}

// Milliseconds of audible (neither GAP nor all-zero) audio in the buffers after buffer `from`.
uint64_t audible_ms_after(const CaptureRun &run, size_t from) {
  GstClockTime total = 0;
  for (size_t i = from; i < run.buffers.size(); ++i) {
    if (!run.buffers[i].gap && !run.buffers[i].silent) {
      total += run.buffers[i].duration;
    }
  }
  return total / GST_MSECOND;
}

// The PTS of the first audible buffer after buffer `from`, or NONE.
GstClockTime first_audible_after(const CaptureRun &run, size_t from) {
  for (size_t i = from; i < run.buffers.size(); ++i) {
    if (!run.buffers[i].gap && !run.buffers[i].silent) {
      return run.buffers[i].pts;
    }
  }
  return GST_CLOCK_TIME_NONE;
}

TEST_F(WasapiReal, TheApplicationIsFollowedAcrossARestart) {
  const TonePlayerCopy copy;  // a name no other process has
  ASSERT_FALSE(copy.path().empty());
  TonePlayer first, second;
  std::string player_error;
  int stage = 0;  // 0 waiting for X, 1 hearing the first, 2 after its exit, 3 hearing the second
  size_t first_attached = 0, second_attached = 0;  // message indices
  const RunStep step = [&](CaptureRun &run, GstElement *) {
    switch (stage) {
      case 0:
        if (find_message(run, "waiting", 0) < run.targets.size() && !run.buffers.empty()) {
          if (!first.start(tone(kFirstHz, 30000), player_error, copy.path())) {
            return true;
          }
          stage = 1;
        }
        return false;
      case 1:
        first_attached = find_message(run, "capturing", first.pid());
        if (first_attached < run.targets.size() &&
            audible_ms_after(run, run.targets[first_attached].buffers) >= kHearMs) {
          first.request_exit();
          stage = 2;
        }
        return false;
      case 2:
        if (find_message(run, "waiting", 0, first_attached + 1) < run.targets.size()) {
          if (!second.start(tone(kSecondHz, 30000), player_error, copy.path())) {
            return true;
          }
          stage = 3;
        }
        return false;
      default:
        second_attached = find_message(run, "capturing", second.pid());
        return second_attached < run.targets.size() &&
               audible_ms_after(run, run.targets[second_attached].buffers) >= kHearMs;
    }
  };
  const CaptureRun run =
      run_capture(capture_description("process-name=" + copy.name() + " on-target-exit=wait",
                                      caps_of({SampleFormat::kF32LE, 48000, 2})),
                  60000, step);
  JsonObject j = scenario_json("follow-across-restart", run);
  if (mode() == Mode::kWine) {
    // wine 8: IAudioSessionManager2::RegisterSessionNotification is E_NOTIMPL.
    RealReport::get().add_scenario(j);
    EXPECT_FALSE(run.started);
    ASSERT_TRUE(run.error.posted) << "no error on the bus";
    EXPECT_EQ(run.error.domain, GST_RESOURCE_ERROR);
    EXPECT_EQ(run.error.code, GST_RESOURCE_ERROR_OPEN_READ);
    EXPECT_NE(run.error.message.find("on-target-exit=wait"), std::string::npos)
        << run.error.message;
    EXPECT_NE(run.error.debug.find("E_NOTIMPL"), std::string::npos) << run.error.debug;
    EXPECT_TRUE(run.buffers.empty());
    return;
  }
  if (!ran_for_real(run, j)) {
    return;
  }
  ASSERT_TRUE(player_error.empty()) << player_error;
  ASSERT_EQ(stage, 3) << "the run ended in stage " << stage;
  ASSERT_LT(second_attached, run.targets.size()) << "the second process was never captured";

  // The messages: waiting, capturing the first, its exit, waiting, capturing the second
  // (stream-count updates in between are capturing messages too).
  std::vector<std::string> changes;
  for (const TargetMessage &t : run.targets) {
    const std::string change = t.state + " " + std::to_string(t.pid);
    if (changes.empty() || changes.back() != change) {
      changes.push_back(change);
    }
    EXPECT_EQ(t.process_name, copy.name());
    if (t.state == "capturing") {
      EXPECT_GE(t.streams, 1u) << "captured from its session, so it has one";
    }
  }
  const std::vector<std::string> expected = {
      "waiting 0",
      "capturing " + std::to_string(first.pid()),
      "exited " + std::to_string(first.pid()),
      "waiting 0",
      "capturing " + std::to_string(second.pid()),
  };
  EXPECT_EQ(changes, expected);

  // Each process heard at its tone, nobody else (the suite's target and decoy play on).
  const GstClockTime first_from = first_audible_after(run, run.targets[first_attached].buffers);
  const GstClockTime second_from = first_audible_after(run, run.targets[second_attached].buffers);
  const double first_db = level_in(run, kFirstHz, 0, first_from);
  const double second_db = level_in(run, kSecondHz, 0, second_from);
  const double others =
      std::max({level_in(run, kTargetHz, 0, first_from), level_in(run, kDecoyHz, 0, first_from),
                level_in(run, kTargetHz, 0, second_from), level_in(run, kDecoyHz, 0, second_from)});
  EXPECT_NEAR(first_db, kPlayedDb, kLevelToleranceDbReal);
  EXPECT_NEAR(second_db, kPlayedDb, kLevelToleranceDbReal);
  EXPECT_LE(level_in(run, kSecondHz, 0, first_from), first_db - kSeparationDb);
  EXPECT_LE(others, std::min(first_db, second_db) - kSeparationDb);

  // One timeline: PTS continuous but for a DISCONT at each attachment after the stream began.
  EXPECT_EQ(continuity_problems(run.buffers), "");
  size_t disconts = 0;
  for (size_t i = 1; i < run.buffers.size(); ++i) {
    disconts += run.buffers[i].discont ? 1 : 0;
  }
  size_t attachments_after_start = 0;
  for (const TargetMessage &t : run.targets) {
    if (t.state == "capturing" && t.buffers > 0 &&
        (&t == &run.targets.front() || (&t - 1)->state != "capturing")) {
      ++attachments_after_start;
    }
  }
  EXPECT_EQ(disconts, attachments_after_start);
  EXPECT_EQ(run.stats.at("reattachments"), attachments_after_start) << run.stats_text;
  // The wait before each process was GAP: nothing audible between its exit and the next.
  const size_t exited = find_message(run, "exited", first.pid());
  ASSERT_LT(exited, run.targets.size());
  size_t gap_between = 0;
  for (size_t i = run.targets[exited].buffers; i < run.targets[second_attached].buffers; ++i) {
    EXPECT_TRUE(run.buffers[i].gap || run.buffers[i].silent) << "sound at buffer " << i;
    gap_between += run.buffers[i].gap ? 1 : 0;
  }
  EXPECT_GT(gap_between, 0u);
  j.set("first_dbfs", first_db)
      .set("second_dbfs", second_db)
      .set("others_dbfs", others)
      .set("disconts", static_cast<uint64_t>(disconts))
      .set("gap_buffers_between", static_cast<uint64_t>(gap_between));
  RealReport::get().add_scenario(j);
}

}  // namespace
}  // namespace testing
}  // namespace wasapi
}  // namespace procaudio
