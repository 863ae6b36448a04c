// SPDX-License-Identifier: LGPL-2.1-or-later
// Which processes to capture, and what to do when the target exits: validated once, before a
// backend sees it.
#pragma once

#include <cstdint>
#include <string>

#include "capture_error.h"

namespace procaudio {

enum class TargetMode {
  kIncludeTree,  // the target process and all its descendants
  kExcludeTree,  // every process except the target and its descendants
};

enum class OnTargetExit {
  kEos,   // the stream ends (files are finalised)
  kWait,  // the stream goes on with GAP silence until the next process of that name starts
};

struct TargetSpec {
  uint32_t pid = 0;          // 0: not set
  std::string process_name;  // empty: not set
  TargetMode mode = TargetMode::kIncludeTree;
  OnTargetExit on_exit = OnTargetExit::kEos;

  bool has_target() const { return pid != 0 || !process_name.empty(); }
  // Waits for, and follows, the process named process_name.
  bool follows() const { return on_exit == OnTargetExit::kWait; }

  // Rules that hold whatever the OS, each an error of kind kInvalidSettings:
  //  - fail closed: include-tree needs a target (only exclude-tree may name none, meaning
  //    "everything except this process"): a value that was never set or was rejected must
  //    not widen the capture to everything;
  //  - at most one way of naming the target, a name without path separators;
  //  - following (kWait) needs process-name (a pid never comes back) and include-tree.
  CaptureError validate() const;

  // "pid 1234 and its children", "everything except process 'firefox' and its children",
  // "every process except this one"; for messages.
  std::string describe() const;
};

}  // namespace procaudio
