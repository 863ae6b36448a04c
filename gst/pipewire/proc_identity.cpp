// SPDX-License-Identifier: LGPL-2.1-or-later
#include "proc_identity.h"

#include <fstream>
#include <sstream>

#include "process_util.h"

namespace procaudio {
namespace pipewire {

std::vector<uint32_t> ns_pids(uint32_t pid) {
  std::vector<uint32_t> pids;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (in && std::getline(in, line)) {
    if (line.rfind("NSpid:", 0) != 0) {
      continue;
    }
    std::istringstream fields(line.substr(6));
    for (unsigned long value; fields >> value;) {
      pids.push_back(static_cast<uint32_t>(value));
    }
    break;
  }
  return pids;
}

std::vector<uint32_t> reporting_candidates(uint32_t reported, const std::string &binary) {
  std::vector<uint32_t> candidates;
  if (reported == 0 || binary.empty()) {
    return candidates;
  }
  std::vector<uint32_t> all;
  if (!list_pids(all)) {
    return candidates;
  }
  for (uint32_t pid : all) {
    // What the process itself calls its pid is the innermost one (its own, outside any
    // namespace).
    const std::vector<uint32_t> pids = ns_pids(pid);
    if (pids.empty() || pids.back() != reported) {
      continue;
    }
    if (process_exists(pid) && has_name(pid, binary)) {
      candidates.push_back(pid);
    }
  }
  return candidates;
}

uint32_t map_reported_pid(uint32_t reported, const std::string &binary,
                          std::vector<uint32_t> *candidates) {
  const std::vector<uint32_t> found = reporting_candidates(reported, binary);
  if (candidates != nullptr) {
    *candidates = found;
  }
  return found.size() == 1 ? found[0] : 0;
}

const std::string &machine_id() {
  static const std::string id = [] {
    // Where libdbus (and so PulseAudio's client library) reads it from.
    for (const char *path : {"/etc/machine-id", "/var/lib/dbus/machine-id"}) {
      std::string line;
      std::ifstream in(path);
      if (std::getline(in, line) && !line.empty()) {
        return line;
      }
    }
    return std::string();
  }();
  return id;
}

// Flatpak writes /.flatpak-info into every sandbox it makes; seen from the host it is in the
// process's root (/proc/PID/root), readable by the same user. PipeWire's access module reads
// the same file to tell a Flatpak client.
std::string flatpak_app_id(uint32_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/root/.flatpak-info");
  std::string line;
  bool in_application = false;
  while (in && std::getline(in, line)) {
    if (!line.empty() && line[0] == '[') {
      in_application = line == "[Application]";
    } else if (in_application && line.rfind("name=", 0) == 0) {
      return line.substr(5);
    }
  }
  return {};
}

}  // namespace pipewire

}  // namespace procaudio
