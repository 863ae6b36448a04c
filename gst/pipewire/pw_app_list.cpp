// SPDX-License-Identifier: LGPL-2.1-or-later
#include "pw_app_list.h"

#include "proc_identity.h"
#include "process_util.h"

namespace procaudio {
namespace pipewire {

namespace {

bool ends_with(const std::string &text, const std::string &tail) {
  return text.size() >= tail.size() &&
         text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

AppRoot find_root(uint32_t pid) {
  // The executable's name is what a person types as process-name and what a browser's
  // children share with it; comm is not (Firefox's content processes call themselves "Web
  // Content"). A Wine program is the exception: every one runs the same loader, and its comm
  // is the .exe's name, which is what it is known by.
  std::string name = pipewire::comm(pid);
  if (!ends_with(name, ".exe")) {
    const std::string exe = pipewire::exe_basename(pid);
    if (!exe.empty()) {
      name = exe;
    }
  }
  AppRoot root;
  if (name.empty()) {
    return root;  // gone already
  }
  root.pid = pipewire::ancestor_named(pid, name);
  if (root.pid != 0) {
    // What it is called is the name it was started as (its comm: paplay, not the pacat that
    // symlink leads to; a script's name, not its interpreter's), unless the kernel cut that at
    // 15 characters: then the executable's.
    const std::string started_as = pipewire::comm(root.pid);
    root.process_name = !started_as.empty() && started_as.size() < 15 ? started_as : name;
    root.app_id = pipewire::flatpak_app_id(root.pid);
  }
  return root;
}

}  // namespace pipewire
}  // namespace procaudio
