// SPDX-License-Identifier: LGPL-2.1-or-later
// pick_root_process(): the one process a capture by name means, on both backends.
#include <gtest/gtest.h>

#include "core/process_match.h"

namespace procaudio {
namespace {

TEST(PickRootProcess, TheRootOfTheTreeNotTheOldestChildOrANewerTree) {
  // chrome(200) -> chrome(300), chrome(400) -> chrome(500); a second, newer chrome(600)
  // started from a shell, and a child (250) whose start time is older than its parent's
  // clock would allow only if the parent were a reused pid -- it is not here.
  const std::vector<ProcessNode> chrome = {
      {200, 100, 2000}, {300, 200, 2100}, {400, 200, 2200}, {500, 400, 2300}, {600, 700, 2500},
  };
  EXPECT_EQ(pick_root_process(chrome), 200u);
}

TEST(PickRootProcess, OfSeveralRootsTheOldest) {
  EXPECT_EQ(pick_root_process({{600, 700, 2500}, {800, 1, 1500}, {900, 1, 1800}}), 800u);
}

TEST(PickRootProcess, AReusedParentPidIsNotAParent) {
  // 900's recorded parent pid 910 now belongs to a younger process of the same name: 900 is
  // the oldest root, 910 the child of nothing named like it.
  EXPECT_EQ(pick_root_process({{900, 910, 5000}, {910, 4, 9000}}), 900u);
}

TEST(PickRootProcess, UnknownStartTimesComeLastThenTheLowestPid) {
  EXPECT_EQ(pick_root_process({{48, 4, 0}, {44, 4, 0}}), 44u);
  EXPECT_EQ(pick_root_process({{48, 4, 0}, {50, 4, 7000}}), 50u);
}

TEST(PickRootProcess, ALoopOfUnknownStartTimesStillPicksOne) {
  // Each names the other as its parent (pids reused, times unknown): no root, so all count.
  EXPECT_EQ(pick_root_process({{31, 30, 0}, {30, 31, 0}}), 30u);
}

TEST(PickRootProcess, NoMatchIsNone) {
  EXPECT_EQ(pick_root_process({}), 0u);
  EXPECT_EQ(pick_root_process({{0, 0, 0}}), 0u);
}

}  // namespace
}  // namespace procaudio
