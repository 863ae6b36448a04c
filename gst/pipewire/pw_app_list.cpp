#include "pw_app_list.h"

#include "proc_identity.h"
#include "proc_tree.h"

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
  std::string name = proc::comm(pid);
  if (!ends_with(name, ".exe")) {
    const std::string exe = proc::exe_basename(pid);
    if (!exe.empty()) {
      name = exe;
    }
  }
  AppRoot root;
  if (name.empty()) {
    return root;  // gone already
  }
  root.pid = proc::ancestor_named(pid, name);
  if (root.pid != 0) {
    // What it is called is the name it was started as (its comm: paplay, not the pacat that
    // symlink leads to; a script's name, not its interpreter's), unless the kernel cut that at
    // 15 characters: then the executable's.
    const std::string started_as = proc::comm(root.pid);
    root.process_name = !started_as.empty() && started_as.size() < 15 ? started_as : name;
    root.app_id = proc::flatpak_app_id(root.pid);
  }
  return root;
}

}  // namespace pipewire
}  // namespace procaudio
