// SPDX-License-Identifier: LGPL-2.1-or-later
#include "app_list.h"

#include <utility>

namespace procaudio {

bool Application::operator==(const Application &other) const {
  return pid == other.pid && process_name == other.process_name && app_name == other.app_name &&
         app_id == other.app_id && display_name == other.display_name && streams == other.streams &&
         playing == other.playing;
}

AppList::AppList(uint32_t self_pid, RootFinder finder)
    : self_pid_(self_pid), finder_(std::move(finder)) {}

Application AppList::describe(uint32_t root, const Group &group) const {
  Application app;
  app.pid = root;
  app.process_name = group.process_name;
  app.streams = static_cast<uint32_t>(group.streams.size());
  // The name the root's own stream gives wins over a child's; among children, the oldest
  // stream's (the lowest stream id), so the name does not flicker as streams come and go.
  const AppStream *named = nullptr;
  for (const auto &entry : group.streams) {
    const AppStream &stream = entry.second;
    app.playing = app.playing || stream.running;
    if (app.app_id.empty()) {
      app.app_id = stream.app_id;
    }
    if (!stream.app_name.empty() &&
        (named == nullptr || (stream.pid == root && named->pid != root))) {
      named = &stream;
    }
  }
  if (app.app_id.empty()) {
    app.app_id = group.app_id;
  }
  app.app_name = named != nullptr ? named->app_name : "";
  app.display_name = app.app_name.empty() ? app.process_name : app.app_name;
  return app;
}

AppList::Change AppList::update(const AppStream &stream) {
  Change change;
  auto known = root_of_.find(stream.id);
  if (stream.pid == 0 || stream.pid == self_pid_) {
    // Nobody's (or ours): never listed; one that was is not any more.
    return known != root_of_.end() ? remove(stream.id) : change;
  }
  if (known != root_of_.end()) {
    Group &group = groups_[known->second];
    const Application before = describe(known->second, group);
    group.streams[stream.id] = stream;
    change.app = describe(known->second, group);
    change.kind = change.app != before ? Change::Kind::kChanged : Change::Kind::kNone;
    return change;
  }
  const AppRoot root = finder_(stream.pid);
  if (root.pid == 0 || root.pid == self_pid_) {
    return change;  // its process exited already, or it plays for us
  }
  root_of_[stream.id] = root.pid;
  auto group = groups_.find(root.pid);
  if (group == groups_.end()) {
    Group &added = groups_[root.pid];
    added.process_name = root.process_name;
    added.app_id = root.app_id;
    added.streams[stream.id] = stream;
    change.kind = Change::Kind::kAdded;
    change.app = describe(root.pid, added);
    return change;
  }
  const Application before = describe(root.pid, group->second);
  group->second.streams[stream.id] = stream;
  change.app = describe(root.pid, group->second);
  change.kind = change.app != before ? Change::Kind::kChanged : Change::Kind::kNone;
  return change;
}

AppList::Change AppList::remove(uint32_t stream_id) {
  Change change;
  auto known = root_of_.find(stream_id);
  if (known == root_of_.end()) {
    return change;
  }
  const uint32_t root = known->second;
  root_of_.erase(known);
  auto group = groups_.find(root);
  if (group == groups_.end()) {
    return change;
  }
  const Application before = describe(root, group->second);
  group->second.streams.erase(stream_id);
  if (group->second.streams.empty()) {
    groups_.erase(group);
    change.kind = Change::Kind::kRemoved;
    change.app = before;
    return change;
  }
  change.app = describe(root, group->second);
  change.kind = change.app != before ? Change::Kind::kChanged : Change::Kind::kNone;
  return change;
}

std::vector<Application> AppList::applications() const {
  std::vector<Application> apps;
  for (const auto &entry : groups_) {
    apps.push_back(describe(entry.first, entry.second));
  }
  return apps;
}

void AppList::clear() {
  root_of_.clear();
  groups_.clear();
}

}  // namespace procaudio
