// SPDX-License-Identifier: LGPL-2.1-or-later
#include "process_match.h"

#include <limits>

namespace procaudio {

uint32_t pick_root_process(const std::vector<ProcessNode> &matches) {
  auto is_child_of_a_match = [&matches](const ProcessNode &p) {
    for (const ProcessNode &q : matches) {
      // A parent cannot be younger than its child: then the pid was reused.
      if (q.pid == p.parent_pid && q.pid != p.pid &&
          (q.start_time == 0 || p.start_time == 0 || q.start_time <= p.start_time)) {
        return true;
      }
    }
    return false;
  };
  std::vector<const ProcessNode *> roots;
  for (const ProcessNode &p : matches) {
    if (p.pid != 0 && !is_child_of_a_match(p)) {
      roots.push_back(&p);
    }
  }
  if (roots.empty()) {
    // Only with unknown start times in a (reused-pid) loop: every match is a candidate.
    for (const ProcessNode &p : matches) {
      if (p.pid != 0) {
        roots.push_back(&p);
      }
    }
  }
  auto key = [](const ProcessNode *p) {
    return p->start_time != 0 ? p->start_time : std::numeric_limits<uint64_t>::max();
  };
  const ProcessNode *best = nullptr;
  for (const ProcessNode *p : roots) {
    if (best == nullptr || key(p) < key(best) || (key(p) == key(best) && p->pid < best->pid)) {
      best = p;
    }
  }
  return best != nullptr ? best->pid : 0;
}

}  // namespace procaudio
