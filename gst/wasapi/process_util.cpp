// SPDX-License-Identifier: LGPL-2.1-or-later
#include "process_util.h"

#include <tlhelp32.h>

#include <algorithm>

#include <limits>

#include "core/process_match.h"
#include "hresult.h"
#include "win_string.h"

namespace procaudio {
namespace wasapi {

// ---- OS version ----

bool query_windows_version(WindowsVersion &version) {
  // RtlGetVersion is exported by ntdll but declared only in the driver kit's headers.
  using RtlGetVersionFn = LONG(WINAPI *)(OSVERSIONINFOW *);
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  if (ntdll == nullptr) {
    return false;
  }
  // Through void(*)(): the portable way to convert between unrelated function types.
  auto fn = reinterpret_cast<RtlGetVersionFn>(
      reinterpret_cast<void (*)()>(GetProcAddress(ntdll, "RtlGetVersion")));
  if (fn == nullptr) {
    return false;
  }
  OSVERSIONINFOW info = {};
  info.dwOSVersionInfoSize = sizeof info;
  if (fn(&info) != 0) {
    return false;
  }
  version.major = info.dwMajorVersion;
  version.minor = info.dwMinorVersion;
  version.build = info.dwBuildNumber;
  return true;
}

CaptureError check_process_loopback_supported(const WindowsVersion &version) {
  const bool new_enough =
      version.major > 10 || (version.major == 10 && version.build >= kProcessLoopbackMinBuild);
  if (new_enough) {
    return {};
  }
  const std::string found = std::to_string(version.major) + "." + std::to_string(version.minor) +
                            "." + std::to_string(version.build);
  return {ErrorKind::kUnsupportedOs,
          "Capturing one process's audio needs Windows 10 version 2004 (build " +
              std::to_string(kProcessLoopbackMinBuild) + ") or later; this is Windows " + found +
              ".",
          "RtlGetVersion: " + found + " < 10.0." + std::to_string(kProcessLoopbackMinBuild) +
              " (process loopback, VAD\\Process_Loopback)"};
}

// ---- One process ----

CaptureError open_process(uint32_t pid, UniqueHandle &process) {
  process.reset();
  const std::string who = "process " + std::to_string(pid);
  if (pid == 0) {
    return {ErrorKind::kNotFound, "There is no such process: pid 0 is not a process.",
            "open_process(0)"};
  }
  UniqueHandle handle(OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid));
  if (!handle.valid()) {
    const DWORD code = GetLastError();
    if (code == ERROR_ACCESS_DENIED) {
      return win32_error(ErrorKind::kAccessDenied,
                         "Access to " + who +
                             " was denied: it may belong to another user or run elevated; run "
                             "the capture as that user or elevated.",
                         "OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION)", code);
    }
    // ERROR_INVALID_PARAMETER is what OpenProcess says for a pid that is not in use.
    return win32_error(ErrorKind::kNotFound,
                       "There is no such process: no process has pid " + std::to_string(pid) + ".",
                       "OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION)", code);
  }
  // A process that exited but whose object is still held by someone opens fine.
  if (WaitForSingleObject(handle.get(), 0) == WAIT_OBJECT_0) {
    return {ErrorKind::kNotFound, "There is no such process: " + who + " has already exited.",
            "OpenProcess succeeded but the process object is signalled (exited)"};
  }
  process = std::move(handle);
  return {};
}

// ---- Names ----

namespace {

const wchar_t kExe[] = L".exe";
constexpr size_t kExeLength = 4;

// `name` without one trailing ".exe" (any case).
std::wstring strip_exe(const std::wstring &name) {
  if (name.size() > kExeLength &&
      CompareStringOrdinal(name.c_str() + name.size() - kExeLength, static_cast<int>(kExeLength),
                           kExe, static_cast<int>(kExeLength), TRUE) == CSTR_EQUAL) {
    return name.substr(0, name.size() - kExeLength);
  }
  return name;
}

uint64_t filetime_value(const FILETIME &t) {
  return (static_cast<uint64_t>(t.dwHighDateTime) << 32) | t.dwLowDateTime;
}

}  // namespace

bool process_name_matches(const std::wstring &exe, const std::wstring &wanted) {
  const std::wstring a = strip_exe(exe);
  const std::wstring b = strip_exe(wanted);
  if (a.empty() || b.empty() || a.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      b.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return false;
  }
  return CompareStringOrdinal(a.c_str(), static_cast<int>(a.size()), b.c_str(),
                              static_cast<int>(b.size()), TRUE) == CSTR_EQUAL;
}

uint32_t pick_root_process(const std::vector<ProcessEntry> &processes, const std::wstring &wanted) {
  std::vector<ProcessNode> matches;
  for (const ProcessEntry &p : processes) {
    if (p.pid != 0 && process_name_matches(p.exe, wanted)) {
      matches.push_back({p.pid, p.parent_pid, p.creation_time});
    }
  }
  return procaudio::pick_root_process(matches);
}

uint32_t ancestor_named(const std::vector<ProcessEntry> &processes, uint32_t pid,
                        const std::wstring &wanted) {
  auto find = [&processes](uint32_t p) -> const ProcessEntry * {
    for (const ProcessEntry &e : processes) {
      if (e.pid == p) {
        return &e;
      }
    }
    return nullptr;
  };
  uint32_t root = 0;
  const ProcessEntry *at = find(pid);
  for (int depth = 0; at != nullptr && depth < 64; ++depth) {
    if (process_name_matches(at->exe, wanted)) {
      root = at->pid;
    }
    const ProcessEntry *parent = at->parent_pid != at->pid ? find(at->parent_pid) : nullptr;
    if (parent != nullptr && parent->creation_time != 0 && at->creation_time != 0 &&
        parent->creation_time > at->creation_time) {
      break;  // younger than its "child": the parent's pid was reused
    }
    at = parent;
  }
  return root;
}

namespace {

// Reads the creation times of `pid` and its ancestors into `processes`: only along the
// chain, as opening every process would be slow.
void read_chain_creation_times(std::vector<ProcessEntry> &processes, uint32_t pid) {
  uint32_t at = pid;
  for (int depth = 0; at != 0 && depth < 64; ++depth) {
    auto it = std::find_if(processes.begin(), processes.end(),
                           [at](const ProcessEntry &e) { return e.pid == at; });
    if (it == processes.end()) {
      break;
    }
    UniqueHandle handle(OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, at));
    FILETIME created, exited, kernel, user;
    if (handle.valid() && GetProcessTimes(handle.get(), &created, &exited, &kernel, &user)) {
      it->creation_time = filetime_value(created);
    }
    at = it->parent_pid != it->pid ? it->parent_pid : 0;
  }
}

}  // namespace

uint32_t find_ancestor_named(uint32_t pid, const std::string &name, uint64_t *snapshot_time) {
  std::vector<ProcessEntry> processes;
  if (list_processes(processes, snapshot_time)) {
    return 0;
  }
  read_chain_creation_times(processes, pid);
  return ancestor_named(processes, pid, to_utf16(name));
}

uint32_t find_root_process(uint32_t pid, std::wstring &exe) {
  exe.clear();
  std::vector<ProcessEntry> processes;
  if (pid == 0 || list_processes(processes)) {
    return 0;
  }
  auto self = std::find_if(processes.begin(), processes.end(),
                           [pid](const ProcessEntry &e) { return e.pid == pid; });
  if (self == processes.end() || self->exe.empty()) {
    return 0;  // exited already
  }
  const std::wstring name = self->exe;
  read_chain_creation_times(processes, pid);
  const uint32_t root = ancestor_named(processes, pid, name);
  if (root != 0) {
    exe = name;
  }
  return root;
}

uint64_t system_time_now() {
  FILETIME now;
  GetSystemTimeAsFileTime(&now);
  return filetime_value(now);
}

CaptureError list_processes(std::vector<ProcessEntry> &processes, uint64_t *snapshot_time) {
  processes.clear();
  if (snapshot_time != nullptr) {
    *snapshot_time = system_time_now();
  }
  UniqueHandle snapshot(CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0));
  if (!snapshot.valid()) {
    return win32_error(ErrorKind::kFailed, "Could not list the running processes.",
                       "CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS)", GetLastError());
  }
  PROCESSENTRY32W entry = {};
  entry.dwSize = sizeof entry;
  if (!Process32FirstW(snapshot.get(), &entry)) {
    return win32_error(ErrorKind::kFailed, "Could not list the running processes.",
                       "Process32FirstW", GetLastError());
  }
  do {
    ProcessEntry p;
    p.pid = entry.th32ProcessID;
    p.parent_pid = entry.th32ParentProcessID;
    p.exe = entry.szExeFile;
    processes.push_back(std::move(p));
  } while (Process32NextW(snapshot.get(), &entry));
  return {};
}

CaptureError open_listed_process(uint32_t pid, uint64_t snapshot_time, UniqueHandle &process,
                                 uint64_t &creation_time) {
  creation_time = 0;
  if (CaptureError error = open_process(pid, process)) {
    return error;
  }
  FILETIME created, exited, kernel, user;
  if (!GetProcessTimes(process.get(), &created, &exited, &kernel, &user)) {
    return {};  // PROCESS_QUERY_LIMITED_INFORMATION allows it; unknown: trust the snapshot
  }
  creation_time = filetime_value(created);
  if (creation_time > snapshot_time) {
    process.reset();
    return {ErrorKind::kNotFound,
            "There is no such process: process " + std::to_string(pid) +
                " exited while it was being looked up, and its pid was reused.",
            "GetProcessTimes: created at " + std::to_string(creation_time) +
                ", after the process snapshot (" + std::to_string(snapshot_time) +
                ", FILETIME units)"};
  }
  return {};
}

CaptureError find_process_by_name(const std::string &name, uint32_t &pid, UniqueHandle &process) {
  pid = 0;
  process.reset();
  const std::wstring wanted = to_utf16(name);
  std::vector<ProcessEntry> processes;
  uint64_t snapshot_time = 0;
  if (CaptureError error = list_processes(processes, &snapshot_time)) {
    return error;
  }
  // Only the candidates are opened (opening every process would be slow); their creation
  // times order them. One that exited or whose pid was reused since the snapshot is dropped.
  std::vector<ProcessEntry> candidates;
  std::vector<UniqueHandle> handles;
  std::vector<CaptureError> refusals;  // of the candidates that could not be opened
  for (const ProcessEntry &p : processes) {
    if (p.pid == 0 || !process_name_matches(p.exe, wanted)) {
      continue;
    }
    ProcessEntry candidate = p;
    UniqueHandle handle;
    const CaptureError error =
        open_listed_process(p.pid, snapshot_time, handle, candidate.creation_time);
    if (error && error.kind == ErrorKind::kNotFound) {
      continue;
    }
    candidates.push_back(std::move(candidate));
    handles.push_back(std::move(handle));
    refusals.push_back(error);
  }
  const uint32_t root = pick_root_process(candidates, wanted);
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i].pid == root) {
      if (refusals[i]) {
        return refusals[i];  // the one to capture cannot be opened (access denied)
      }
      pid = root;
      process = std::move(handles[i]);
      return {};
    }
  }
  return {ErrorKind::kNotFound,
          "There is no such process: no running process is named '" + name +
              "'. Check the name in Task Manager's Details tab (e.g. chrome.exe).",
          "Toolhelp32 snapshot: " + std::to_string(processes.size()) + " processes, none named '" +
              name + "' (case-insensitive, .exe optional)"};
}

}  // namespace wasapi
}  // namespace procaudio
