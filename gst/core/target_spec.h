// Which processes to capture: validated once, before a backend sees it.
#pragma once

#include <cstdint>
#include <string>

#include "capture_error.h"

namespace procaudio {

enum class TargetMode {
  kIncludeTree,  // the target process and all its descendants
  kExcludeTree,  // every process except the target and its descendants
};

struct TargetSpec {
  uint32_t pid = 0;          // 0: not set
  std::string process_name;  // empty: not set
  TargetMode mode = TargetMode::kIncludeTree;

  bool has_target() const { return pid != 0 || !process_name.empty(); }

  // Rules that hold whatever the OS: at most one way of naming the target, a name without
  // path separators. Returns an error of kind kInvalidSettings, or none.
  CaptureError validate() const;

  // "pid 1234", "process 'firefox'", "no target"; for messages.
  std::string describe() const;
};

}  // namespace procaudio
