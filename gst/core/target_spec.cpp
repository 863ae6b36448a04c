// SPDX-License-Identifier: LGPL-2.1-or-later
#include "target_spec.h"

#include "capture_backend.h"

namespace procaudio {

const char *target_phase_name(TargetState::Phase phase) {
  switch (phase) {
    case TargetState::Phase::kWaiting:
      return "waiting";
    case TargetState::Phase::kCapturing:
      return "capturing";
    case TargetState::Phase::kExited:
      return "exited";
  }
  return "?";
}

CaptureError TargetSpec::validate() const {
  if (!has_target() && mode == TargetMode::kIncludeTree) {
    return {ErrorKind::kInvalidSettings,
            "No target to capture: set process-name (e.g. process-name=firefox) or pid. To "
            "capture every process except this one instead, set mode=exclude-tree with neither.",
            "TargetSpec: include-tree with neither pid nor process_name"};
  }
  if (pid != 0 && !process_name.empty()) {
    return {ErrorKind::kInvalidSettings,
            "Both pid (" + std::to_string(pid) + ") and process-name ('" + process_name +
                "') are set: set only one of them.",
            "TargetSpec: pid and process_name are mutually exclusive"};
  }
  if (process_name.find_first_of("/\\") != std::string::npos) {
    return {ErrorKind::kInvalidSettings,
            "process-name '" + process_name +
                "' contains a path separator: give the executable's name only, e.g. 'firefox'.",
            "TargetSpec: path separator in process_name"};
  }
  if (follows() && process_name.empty()) {
    return {ErrorKind::kInvalidSettings,
            "on-target-exit=wait follows an application by its name, and a pid never comes "
            "back: set process-name instead of pid" +
                std::string(pid != 0 ? " (pid " + std::to_string(pid) + ")." : "."),
            "TargetSpec: on_exit kWait without process_name"};
  }
  if (follows() && mode != TargetMode::kIncludeTree) {
    return {ErrorKind::kInvalidSettings,
            "on-target-exit=wait captures the application it follows: it needs "
            "mode=include-tree.",
            "TargetSpec: on_exit kWait with exclude-tree"};
  }
  return {};
}

std::string TargetSpec::describe() const {
  if (!has_target()) {
    return "every process except this one";
  }
  const std::string who =
      pid != 0 ? "pid " + std::to_string(pid) : "process '" + process_name + "'";
  return (mode == TargetMode::kIncludeTree ? "" : "everything except ") + who + " and its children";
}

}  // namespace procaudio
