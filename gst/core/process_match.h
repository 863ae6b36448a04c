// SPDX-License-Identifier: LGPL-2.1-or-later
// Which process a capture by name means when several have the name: the root of their tree
// (a browser, not one of its audio children). Pure: each backend lists its OS's processes
// its own way, keeps those with the name, and asks this.
#pragma once

#include <cstdint>
#include <vector>

namespace procaudio {

struct ProcessNode {
  uint32_t pid = 0;
  uint32_t parent_pid = 0;
  uint64_t start_time = 0;  // when it started, in any unit that orders; 0: unknown
};

// Of `matches` (the processes with the wanted name), the root of their tree: one whose
// parent is not one of them (a parent that started after its "child" is a reused pid, not a
// parent); of several roots, the oldest (unknown start times last, then the lowest pid).
// 0 if there are none.
uint32_t pick_root_process(const std::vector<ProcessNode> &matches);

}  // namespace procaudio
