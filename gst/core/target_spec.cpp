#include "target_spec.h"

namespace procaudio {

CaptureError TargetSpec::validate() const {
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
  return {};
}

std::string TargetSpec::describe() const {
  std::string who = pid != 0                ? "pid " + std::to_string(pid)
                    : !process_name.empty() ? "process '" + process_name + "'"
                                            : std::string("no target");
  if (!has_target()) {
    return "every process except this one";
  }
  return (mode == TargetMode::kIncludeTree ? "" : "everything except ") + who +
         (mode == TargetMode::kIncludeTree ? " and its children" : " and its children");
}

}  // namespace procaudio
