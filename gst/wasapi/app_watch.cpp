// SPDX-License-Identifier: LGPL-2.1-or-later
#include "app_watch.h"

#include <windows.h>

#include <utility>

#include "process_util.h"
#include "win_string.h"

namespace procaudio {
namespace wasapi {

namespace {

// What a person recognises: the name the session gives itself, else the executable's name
// without ".exe" ("chrome"), for the display name and the application name alike.
Application as_shown(Application app) {
  if (app.app_name.empty()) {
    app.display_name = without_exe(app.process_name);
  }
  return app;
}

// A display name that is a resource reference ("@%SystemRoot%\System32\foo.dll,-202") names
// nothing a person reads until it is loaded from that module: the executable's name is
// shown instead.
std::string display_name_of(const SessionEvent &event) {
  if (event.display_name.empty() || event.display_name[0] == L'@') {
    return {};
  }
  return to_utf8(event.display_name);
}

}  // namespace

std::string without_exe(const std::string &name) {
  static const char kExe[] = ".exe";
  const size_t n = sizeof kExe - 1;
  if (name.size() > n) {
    const std::string tail = name.substr(name.size() - n);
    if (CompareStringOrdinal(to_utf16(tail).c_str(), -1, L".exe", -1, TRUE) == CSTR_EQUAL) {
      return name.substr(0, name.size() - n);
    }
  }
  return name;
}

AppRoot find_app_root(uint32_t pid) {
  AppRoot root;
  std::wstring exe;
  root.pid = find_root_process(pid, exe);
  root.process_name = to_utf8(exe);
  return root;
}

AppWatch::AppWatch(Logger log, Events *events, std::shared_ptr<SessionManagerSource> managers,
                   RootFinder finder)
    : log_(std::move(log)),
      events_(events),
      sessions_(log_, std::move(managers)),
      apps_(static_cast<uint32_t>(GetCurrentProcessId()),
            finder ? std::move(finder) : RootFinder(find_app_root)) {}

AppWatch::~AppWatch() {
  stop();
}

void AppWatch::tell(const AppList::Change &change) {
  const Application app = as_shown(change.app);
  const char *playing = app.playing ? "playing" : "not playing";
  switch (change.kind) {
    case AppList::Change::Kind::kAdded:
      PROCAUDIO_DEBUG(log_, "application pid %u '%s' (%s) has %u session(s), %s", app.pid,
                      app.display_name.c_str(), app.process_name.c_str(), app.streams, playing);
      if (events_ != nullptr) {
        events_->on_app_added(app);
      }
      break;
    case AppList::Change::Kind::kChanged:
      PROCAUDIO_DEBUG(log_, "application pid %u '%s': %u session(s), %s", app.pid,
                      app.display_name.c_str(), app.streams, playing);
      if (events_ != nullptr) {
        events_->on_app_changed(app);
      }
      break;
    case AppList::Change::Kind::kRemoved:
      PROCAUDIO_DEBUG(log_, "application pid %u '%s' has no session any more", app.pid,
                      app.display_name.c_str());
      if (events_ != nullptr) {
        events_->on_app_removed(app);
      }
      break;
    case AppList::Change::Kind::kNone:
      break;
  }
}

// On the SessionWatch's worker, one session's news at a time.
void AppWatch::on_session(const SessionEvent &event) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto known = stream_ids_.find(event.id);
  if (event.state == SessionEvent::State::kExpired) {
    if (known != stream_ids_.end()) {
      const uint32_t id = known->second;
      stream_ids_.erase(known);
      tell(apps_.remove(id));
    }
    return;
  }
  // The system sounds session plays for Windows, not an application; pid 0 is no single
  // process (AppList drops those too).
  if (event.system_sounds || event.pid == 0) {
    return;
  }
  AppStream stream;
  if (known != stream_ids_.end()) {
    stream.id = known->second;
  } else {
    stream.id = next_stream_id_++;
    stream_ids_[event.id] = stream.id;
  }
  stream.pid = event.pid;
  stream.running = event.state == SessionEvent::State::kActive;
  stream.app_name = display_name_of(event);
  tell(apps_.update(stream));
}

CaptureError AppWatch::start() {
  stop();
  CaptureError error = sessions_.start([this](const SessionEvent &e) { on_session(e); });
  if (error) {
    // SessionWatch's own words are about following an application by name; these are about
    // listing the applications, with the same failed call and HRESULT in the detail. Logged
    // by the caller (the provider warns), once.
    error.message =
        "Windows does not report this machine's audio sessions, so no application playing "
        "audio can be listed.";
    stop();
  }
  return error;
}

void AppWatch::stop() {
  sessions_.stop();  // no session news after this
  std::lock_guard<std::mutex> lock(mutex_);
  apps_.clear();
  stream_ids_.clear();
}

std::vector<Application> AppWatch::applications() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Application> apps = apps_.applications();
  for (Application &app : apps) {
    app = as_shown(std::move(app));
  }
  return apps;
}

CaptureError AppWatch::list(const Logger &log, std::shared_ptr<SessionManagerSource> managers,
                            std::vector<Application> *apps) {
  apps->clear();
  AppWatch watch(log, nullptr, std::move(managers));
  if (CaptureError error = watch.start()) {
    return error;
  }
  *apps = watch.applications();
  watch.stop();
  return {};
}

}  // namespace wasapi
}  // namespace procaudio
