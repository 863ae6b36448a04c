// SPDX-License-Identifier: LGPL-2.1-or-later
#include "process_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/process_match.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace procaudio {
namespace pipewire {
namespace {

std::string proc_path(uint32_t pid, const char *what) {
  return "/proc/" + std::to_string(pid) + "/" + what;
}

std::string errno_detail(const char *what, int err) {
  return std::string(what) + ": " + errno_text(err);
}

// /proc/PID/stat fields after "pid (comm) ": state is field 3. The comm may hold spaces and
// parentheses, so split after the last ')'.
struct Stat {
  char state = 0;
  uint32_t ppid = 0;
  uint64_t start_time = 0;
};

bool read_stat(uint32_t pid, Stat &out) {
  if (pid == 0) {
    return false;
  }
  std::ifstream in(proc_path(pid, "stat"));
  std::string line;
  if (!in || !std::getline(in, line)) {
    return false;
  }
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) {
    return false;
  }
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  // field 3 = state, 4 = ppid, ..., 22 = starttime
  for (int index = 3; index <= 22 && fields >> field; ++index) {
    if (index == 3) {
      out.state = field.empty() ? 0 : field[0];
    } else if (index == 4) {
      out.ppid = static_cast<uint32_t>(std::strtoul(field.c_str(), nullptr, 10));
    } else if (index == 22) {
      out.start_time = std::strtoull(field.c_str(), nullptr, 10);
      return true;
    }
  }
  return false;
}

}  // namespace

bool process_exists(uint32_t pid) {
  Stat stat;
  return read_stat(pid, stat) && stat.state != 'Z' && stat.state != 'X';
}

std::string comm(uint32_t pid) {
  std::ifstream in(proc_path(pid, "comm"));
  std::string line;
  if (!in || !std::getline(in, line)) {
    return {};
  }
  return line;
}

std::string exe_basename(uint32_t pid) {
  char buf[4096];
  const ssize_t n = readlink(proc_path(pid, "exe").c_str(), buf, sizeof buf - 1);
  if (n <= 0) {
    return {};
  }
  std::string path(buf, static_cast<size_t>(n));
  static const std::string kDeleted = " (deleted)";
  if (path.size() > kDeleted.size() &&
      path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
    path.resize(path.size() - kDeleted.size());
  }
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

uint32_t parent_pid(uint32_t pid) {
  Stat stat;
  return read_stat(pid, stat) ? stat.ppid : 0;
}

uint64_t start_time(uint32_t pid) {
  Stat stat;
  return read_stat(pid, stat) ? stat.start_time : 0;
}

bool is_in_tree(uint32_t pid, uint32_t root) {
  if (pid == 0 || root == 0) {
    return false;
  }
  // Bounded: a ppid chain is never longer than the number of processes; 4096 covers any tree
  // and stops a pathological loop (a pid reused while we walk).
  for (int depth = 0; depth < 4096 && pid > 1; ++depth) {
    if (pid == root) {
      return true;
    }
    pid = parent_pid(pid);
  }
  return pid == root;
}

bool list_pids(std::vector<uint32_t> &pids, int *err) {
  pids.clear();
  DIR *dir = opendir("/proc");
  if (dir == nullptr) {
    if (err != nullptr) {
      *err = errno;
    }
    return false;
  }
  while (struct dirent *entry = readdir(dir)) {
    char *end = nullptr;
    const unsigned long value = std::strtoul(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0' && value != 0) {
      pids.push_back(static_cast<uint32_t>(value));
    }
  }
  closedir(dir);
  return true;
}

bool has_name(uint32_t pid, const std::string &name) {
  if (name.empty()) {
    return false;
  }
  const std::string exe = exe_basename(pid);
  if (exe == name) {
    return true;
  }
  const std::string c = comm(pid);
  if (c == name) {
    return true;
  }
  // TASK_COMM_LEN - 1: a longer name matches the kernel's truncation of it, but only when
  // something else says the rest: the command line's program or script (an interpreter runs
  // scripts), or nothing can be read (another user's process). So "gnome-control-center" is
  // not taken for "gnome-control-center-search-provider".
  if (name.size() <= 15 || c != name.substr(0, 15)) {
    return false;
  }
  if (exe.empty()) {
    return true;
  }
  std::ifstream in(proc_path(pid, "cmdline"), std::ios::binary);
  std::string arg;
  for (int i = 0; i < 2 && std::getline(in, arg, '\0'); ++i) {
    const auto slash = arg.rfind('/');
    if ((slash == std::string::npos ? arg : arg.substr(slash + 1)) == name) {
      return true;
    }
  }
  return false;
}

uint32_t ancestor_named(uint32_t pid, const std::string &name) {
  if (!process_exists(pid)) {
    return 0;  // exited: whoever it played for, it plays no more
  }
  uint32_t found = 0;
  // Bounded as in is_in_tree(); the topmost match is the root of the application's tree.
  for (int depth = 0; depth < 4096 && pid > 1; ++depth) {
    if (has_name(pid, name)) {
      found = pid;
    }
    pid = parent_pid(pid);
  }
  return found;
}

CaptureError resolve_process_name(const std::string &name, uint32_t &pid) {
  pid = 0;
  if (name.empty()) {
    return {ErrorKind::kInvalidSettings, "process-name is empty.", "resolve_process_name"};
  }
  std::vector<uint32_t> pids;
  int err = 0;
  if (!list_pids(pids, &err)) {
    return {ErrorKind::kFailed, "Cannot list processes: /proc is not readable.",
            errno_detail("opendir(/proc)", err)};
  }
  std::vector<ProcessNode> matches;
  for (uint32_t candidate : pids) {
    Stat stat;
    if (!read_stat(candidate, stat) || stat.state == 'Z' || stat.state == 'X') {
      continue;
    }
    if (has_name(candidate, name)) {
      matches.push_back({candidate, stat.ppid, stat.start_time});
    }
  }
  if (matches.empty()) {
    return {ErrorKind::kNotFound,
            "No running process is named '" + name +
                "' (neither /proc/PID/comm nor the executable's name): start it first, or check "
                "the spelling (e.g. 'firefox').",
            "resolve_process_name: no match in /proc"};
  }
  pid = pick_root_process(matches);
  return {};
}

CaptureError check_pid(uint32_t pid) {
  if (pid == 0) {
    return {ErrorKind::kInvalidSettings, "pid 0 names no process.", "check_pid(0)"};
  }
  if (kill(static_cast<pid_t>(pid), 0) != 0) {
    const int err = errno;
    if (err == ESRCH) {
      return {ErrorKind::kNotFound,
              "No process with pid " + std::to_string(pid) + " is running: check the pid.",
              errno_detail(("kill(" + std::to_string(pid) + ", 0)").c_str(), err)};
    }
    // EPERM: it exists but belongs to someone else; its audio streams are still visible
    // to PipeWire, so this is not an error here.
  }
  if (!process_exists(pid)) {
    return {ErrorKind::kNotFound,
            "No process with pid " + std::to_string(pid) + " is running (it has exited).",
            "/proc/" + std::to_string(pid) + "/stat: missing or zombie"};
  }
  return {};
}

ExitWatch::~ExitWatch() {
  close();
}

CaptureError ExitWatch::open(uint32_t pid, uint64_t expected_start) {
  close();
  const long fd = syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0u);
  if (fd < 0) {
    const int err = errno;
    if (err == ESRCH) {
      return {ErrorKind::kNotFound, "The process with pid " + std::to_string(pid) + " has exited.",
              errno_detail("pidfd_open", err)};
    }
    return {
        ErrorKind::kFailed,
        "Cannot watch pid " + std::to_string(pid) + " for its exit (pidfd_open needs Linux 5.3).",
        errno_detail("pidfd_open", err)};
  }
  fd_ = static_cast<int>(fd);
  fcntl(fd_, F_SETFD, FD_CLOEXEC);
  if (expected_start != 0 && start_time(pid) != expected_start) {
    close();
    return {ErrorKind::kNotFound,
            "The process with pid " + std::to_string(pid) + " has exited (its pid was reused).",
            "start time in /proc/PID/stat changed"};
  }
  if (!process_exists(pid)) {  // a zombie: exited, not reaped yet
    close();
    return {ErrorKind::kNotFound, "The process with pid " + std::to_string(pid) + " has exited.",
            "/proc/" + std::to_string(pid) + "/stat: zombie"};
  }
  return {};
}

void ExitWatch::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace pipewire
}  // namespace procaudio
